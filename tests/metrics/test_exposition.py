from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from tests.incidents.factories import IncidentFactory, ServiceFactory


def samples(content: bytes) -> dict:
    out = {}
    for family in text_string_to_metric_families(content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_needs_the_bearer_token(client, settings, db):
    settings.FIREBREAK_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_off_without_a_token(client, settings, db):
    settings.FIREBREAK_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_open_and_unacknowledged(client, settings, db):
    settings.FIREBREAK_METRICS_TOKEN = "t"
    checkout = ServiceFactory(slug="checkout")
    IncidentFactory(service=checkout, severity="P0", status="triggered")
    IncidentFactory(service=checkout, severity="P0", status="acknowledged")
    IncidentFactory(service=checkout, severity="P1", status="closed")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")
    values = samples(response.content)
    assert values[("firebreak_open_incidents", (("service", "checkout"), ("severity", "P0")))] == 2
    assert values[("firebreak_unacknowledged_incidents", (("severity", "P0"),))] == 1
    assert ("firebreak_open_incidents", (("service", "checkout"), ("severity", "P1"))) not in values
    assert len(queries) == 5


def test_metrics_overdue_action_items(client, settings, db):
    from datetime import date

    from tests.postmortems.factories import ActionItemFactory

    settings.FIREBREAK_METRICS_TOKEN = "t"
    ActionItemFactory(due_on=date(2020, 1, 1))
    ActionItemFactory(due_on=date(2999, 1, 1))
    values = samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content)
    assert values[("firebreak_overdue_action_items", (("team", ""),))] == 1


def test_metrics_oncall_gaps_in_the_next_week(client, settings, db):
    from oncall.services import rotation_generate
    from tests.oncall.factories import RotationFactory

    settings.FIREBREAK_METRICS_TOKEN = "t"
    rotation = RotationFactory(unit="daily")  # no members: every slot is a gap
    rotation_generate(rotation=rotation)
    values = samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content)
    assert values[("firebreak_oncall_gaps_next_7_days", (("team", rotation.team.slug),))] >= 7
