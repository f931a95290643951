import pytest

from tests.incidents.factories import ServiceFactory


@pytest.fixture
def service(db):
    return ServiceFactory(slug="checkout", name="Checkout")
