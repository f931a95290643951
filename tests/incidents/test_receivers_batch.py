"""One request of many alerts is handled as a batch: the same number of queries whatever its size, and the same
outcome as sending its alerts one by one (the same fingerprint twice, fired then resolved, a severity raise)."""

import functools
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.alerting import services
from incidents.models import Alert, AlertRoute, Incident, IncidentEvent
from tests.incidents.alerting_helpers import NOW, alertmanager_url, make_integration, post_json


@pytest.fixture
def am(service):
    return make_integration(service, "alertmanager", rate_limit_per_minute=10_000)


def alert(fingerprint, status="firing", severity="critical", **labels):
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "severity": severity, "fp": fingerprint, **labels},
        "annotations": {"summary": f"disk full {fingerprint}"},
        "startsAt": "2026-11-27T09:00:00Z",
        "endsAt": "2026-11-27T09:11:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


def payload(*alerts, group="disk"):
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="DiskFull", group="{group}"}}',
        "status": "firing",
        "receiver": "firebreak",
        "alerts": list(alerts),
    }


def queries_for(client, key, body):
    with CaptureQueriesContext(connection) as captured:
        response = post_json(client, alertmanager_url(key), body)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def test_queries_do_not_grow_with_the_alerts_of_a_request(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), payload(alert("seed")))  # opens the group's incident

    one = queries_for(client, key, payload(alert("a-0")))
    forty = queries_for(client, key, payload(*(alert(f"b-{n}") for n in range(40))))
    # a constant number: the key, the rate limit, BEGIN-less locks, routes, the firing rows, maintenance,
    # the group's incident, one INSERT (savepoints and the transaction are not queries)
    assert one <= 10

    assert forty == one
    assert Alert.objects.filter(fingerprint__startswith="b-").count() == 40
    incident = Incident.objects.get()
    assert Alert.objects.filter(incident=incident).count() == 42


def test_repeats_of_a_request_do_not_grow_its_queries_either(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), payload(*(alert(f"r-{n}") for n in range(30))))

    one = queries_for(client, key, payload(alert("r-0")))
    thirty = queries_for(client, key, payload(*(alert(f"r-{n}") for n in range(30))))

    assert thirty == one  # the repeated rows are written by one UPDATE
    assert set(Alert.objects.values_list("repeat_count", flat=True)) == {2, 3}


def test_a_repeat_writes_the_latest_labels_annotations_and_time(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), payload(alert("r"), alert("s")))
    frozen.shift(timedelta(minutes=5))
    again = alert("r", severity="warning")
    again["annotations"] = {"summary": "disk still full"}

    post_json(client, alertmanager_url(key), payload(again, alert("s")))

    row = Alert.objects.get(fingerprint="r")
    assert (row.repeat_count, row.labels["severity"], row.annotations) == (2, "warning", {"summary": "disk still full"})
    assert (row.received_at, row.last_received_at) == (NOW, NOW + timedelta(minutes=5))
    assert Alert.objects.get(fingerprint="s").repeat_count == 2


def test_the_same_fingerprint_twice_in_a_request_is_one_alert(client, am, frozen):
    _, key = am

    response = post_json(client, alertmanager_url(key), payload(alert("x"), alert("x", severity="warning")))

    assert response.json() | {"incidents_opened": None} == {
        "status": "success",
        "alerts": 2,
        "created": 1,
        "deduplicated": 1,
        "resolved": 0,
        "incidents_opened": None,
    }
    row = Alert.objects.get()
    assert (row.repeat_count, row.labels["severity"]) == (2, "warning")  # the later copy's labels
    assert Incident.objects.count() == 1


def test_fired_then_resolved_in_one_request_resolves_the_alert_and_its_incident(client, am, frozen):
    _, key = am

    response = post_json(client, alertmanager_url(key), payload(alert("y"), alert("y", status="resolved")))

    assert (response.json()["created"], response.json()["resolved"]) == (1, 1)
    row = Alert.objects.get()
    assert row.status == "resolved"
    assert row.ends_at == datetime(2026, 11, 27, 9, 11, tzinfo=UTC)
    incident = Incident.objects.get()
    assert row.incident == incident
    assert incident.status == "resolved"


def test_fired_resolved_and_fired_again_in_one_request_is_two_alerts_and_an_open_incident(client, am, frozen):
    _, key = am

    post_json(client, alertmanager_url(key), payload(alert("z"), alert("z", status="resolved"), alert("z")))

    assert list(Alert.objects.order_by("id").values_list("status", flat=True)) == ["resolved", "firing"]
    incident = Incident.objects.get()
    assert set(Alert.objects.values_list("incident", flat=True)) == {incident.pk}
    assert incident.status == "triggered"  # one of its alerts still fires


def test_a_more_severe_alert_in_the_batch_raises_the_incident_once(client, am, frozen):
    _, key = am

    post_json(
        client,
        alertmanager_url(key),
        payload(alert("w1", severity="warning"), alert("w2", severity="critical"), alert("w3", severity="critical")),
    )

    incident = Incident.objects.get()
    assert incident.severity == "P1"
    assert list(incident.events.values_list("kind", flat=True)) == [
        IncidentEvent.Kind.DECLARED,
        IncidentEvent.Kind.SEVERITY_CHANGED,
    ]
    assert incident.events.get(kind=IncidentEvent.Kind.SEVERITY_CHANGED).data == {"old": "P3", "new": "P1"}


def test_flap_delayed_alerts_of_a_batch_each_schedule_their_incident(
    client, am, frozen, django_capture_on_commit_callbacks
):
    integration, key = am
    AlertRoute.objects.create(integration=integration, position=1, matchers={}, flap_delay=timedelta(minutes=2))

    with django_capture_on_commit_callbacks() as callbacks:
        post_json(client, alertmanager_url(key), payload(*(alert(f"f-{n}") for n in range(3))))

    rows = list(Alert.objects.order_by("id"))
    assert [row.incident_due_at for row in rows] == [NOW + timedelta(minutes=2)] * 3
    assert Incident.objects.count() == 0
    scheduled = [
        cb.keywords for cb in callbacks if isinstance(cb, functools.partial) and cb.func is services._schedule_open
    ]
    assert scheduled == [{"alert_id": row.pk, "countdown": 120.0} for row in rows]


def test_locks_are_taken_in_one_statement_for_every_group_and_fingerprint(client, am, frozen):
    _, key = am
    body = payload(*(alert(f"l-{n}") for n in range(5)))
    with CaptureQueriesContext(connection) as captured:
        post_json(client, alertmanager_url(key), body)

    locks = [q["sql"] for q in captured.captured_queries if "pg_advisory_xact_lock" in q["sql"]]
    assert len(locks) == 1
    assert (locks[0].count("alert:"), locks[0].count("alert-group:")) == (5, 1)
