import pytest

from tests.incidents.factories import ServiceFactory
from tests.oncall.conftest import make_rotation  # noqa: F401 - shared with the escalation tests


@pytest.fixture
def service(db):
    return ServiceFactory(slug="checkout", name="Checkout")
