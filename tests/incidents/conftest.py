import pytest
import time_machine

from tests.incidents.alerting_helpers import NOW
from tests.incidents.factories import ServiceFactory
from tests.oncall.conftest import make_rotation  # noqa: F401 - shared with the escalation tests


@pytest.fixture
def frozen():
    """The clock stopped at NOW, the time of the reference alert payloads (a test may define its own)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def service(db):
    return ServiceFactory(slug="checkout", name="Checkout")


@pytest.fixture
def local_server():
    """A real HTTP peer on 127.0.0.1 (see response_helpers.start_server)."""
    from tests.incidents.response_helpers import start_server

    state, server = start_server()
    yield state
    server.shutdown()
    server.server_close()
