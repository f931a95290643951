import pytest

from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import TeamFactory


@pytest.fixture
def team(db):
    return TeamFactory(slug="payments", name="Payments", timezone="Europe/Berlin")


@pytest.fixture
def service(team):
    return ServiceFactory(slug="checkout", name="Checkout", team=team)
