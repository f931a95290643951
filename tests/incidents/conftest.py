import pytest

from tests.incidents.factories import ServiceFactory
from tests.oncall.conftest import make_rotation  # noqa: F401 - shared with the escalation tests


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
