"""The PagerDuty Events API v2 compatible receiver: trigger, acknowledge, resolve by dedup_key."""

from datetime import UTC, datetime

import pytest
import time_machine

from incidents.models import Alert, Incident
from tests.incidents.alerting_helpers import PAGERDUTY_URL, make_integration, post_json, reference

NOW = datetime(2026, 11, 27, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def routing_key(service):
    with time_machine.travel(NOW, tick=False):
        yield make_integration(service, "pagerduty_v2")[1]


def _event(routing_key, action="trigger", **changes):
    event = reference("pd-events-v2-trigger.json")
    event["routing_key"] = routing_key
    event["event_action"] = action
    event.update(changes)
    return event


def test_pagerduty_trigger_acknowledge_resolve(client, routing_key):
    response = post_json(client, PAGERDUTY_URL, _event(routing_key))

    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "incident-42"}
    alert = Alert.objects.get()
    assert (alert.fingerprint, alert.labels["source"], alert.severity) == ("incident-42", "checkout-prod", "P1")
    assert alert.annotations["incident_id"] == "42"  # custom_details kept as annotations
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.status) == (
        "HighErrorRate on checkout: 5xx > 5%",
        "P1",
        "triggered",
    )

    response = post_json(
        client, PAGERDUTY_URL, {"routing_key": routing_key, "event_action": "acknowledge", "dedup_key": "incident-42"}
    )

    assert response.status_code == 202
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert Alert.objects.get().acknowledged_at is not None

    response = post_json(
        client, PAGERDUTY_URL, {"routing_key": routing_key, "event_action": "resolve", "dedup_key": "incident-42"}
    )

    assert response.status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert Alert.objects.get().status == "resolved"


def test_pagerduty_repeated_trigger_is_deduplicated(client, routing_key):
    for _ in range(5):
        assert post_json(client, PAGERDUTY_URL, _event(routing_key)).status_code == 202
    assert Alert.objects.get().repeat_count == 5
    assert Incident.objects.count() == 1


def test_pagerduty_trigger_without_dedup_key_gets_one(client, routing_key):
    event = _event(routing_key)
    del event["dedup_key"]
    response = post_json(client, PAGERDUTY_URL, event)

    assert response.status_code == 202
    dedup_key = response.json()["dedup_key"]
    assert len(dedup_key) == 32
    assert Alert.objects.get().fingerprint == dedup_key


@pytest.mark.parametrize(("severity", "expected"), [("critical", "P1"), ("error", "P2"), ("warning", "P3")])
def test_pagerduty_severity_mapping(client, routing_key, severity, expected):
    event = _event(routing_key)
    event["payload"]["severity"] = severity
    post_json(client, PAGERDUTY_URL, event)
    assert Incident.objects.get().severity == expected


def test_pagerduty_info_opens_no_incident(client, routing_key):
    event = _event(routing_key)
    event["payload"]["severity"] = "info"
    assert post_json(client, PAGERDUTY_URL, event).status_code == 202
    assert Alert.objects.get().suppressed == "informational"
    assert Incident.objects.count() == 0


def test_pagerduty_acknowledge_or_resolve_of_unknown_dedup_key_is_accepted_and_changes_nothing(client, routing_key):
    for action in ("acknowledge", "resolve"):
        response = post_json(
            client, PAGERDUTY_URL, {"routing_key": routing_key, "event_action": action, "dedup_key": "nope"}
        )
        assert response.status_code == 202
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_action": "explode"}, "event_action"),
        ({"payload": None}, "payload"),
        ({"payload": {"source": "x", "severity": "critical"}}, "payload.summary"),
        ({"payload": {"summary": "x", "severity": "critical"}}, "payload.source"),
        ({"payload": {"summary": "x", "source": "y", "severity": "fatal"}}, "payload.severity"),
        ({"payload": {"summary": "x", "source": "y", "severity": "info", "timestamp": "now"}}, "payload.timestamp"),
    ],
)
def test_pagerduty_invalid_event_is_400_naming_the_field(client, routing_key, change, field):
    response = post_json(client, PAGERDUTY_URL, _event(routing_key, **change))

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event"
    assert any(error.startswith(field + ":") for error in body["errors"]), body
    assert Alert.objects.count() == 0


def test_pagerduty_acknowledge_needs_dedup_key(client, routing_key):
    response = post_json(client, PAGERDUTY_URL, {"routing_key": routing_key, "event_action": "acknowledge"})
    assert response.status_code == 400
    assert response.json()["errors"] == ["dedup_key: is required"]


def test_pagerduty_unknown_or_missing_routing_key(client, routing_key, service):
    _, alertmanager_key = make_integration(service, "alertmanager")
    assert post_json(client, PAGERDUTY_URL, _event("R0UTINGKEY0000000000000000000000")).status_code == 404
    assert post_json(client, PAGERDUTY_URL, _event(alertmanager_key)).status_code == 404
    event = _event(routing_key)
    del event["routing_key"]
    assert post_json(client, PAGERDUTY_URL, event).status_code == 400
    assert post_json(client, PAGERDUTY_URL, b"nope").status_code == 400
    assert Alert.objects.count() == 0


def test_pagerduty_trailing_slash_is_accepted(client, routing_key):
    assert post_json(client, PAGERDUTY_URL + "/", _event(routing_key)).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b'{"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "s", '
        b'"severity": "error", "custom_details": {"x": NaN}}}',
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe",
        b'{"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s\\u0000", "source": "s", '
        b'"severity": "error"}}',
    ],
)
def test_pagerduty_unstorable_json_is_400(client, routing_key, body):
    response = post_json(client, PAGERDUTY_URL, body.replace(b'"k"', f'"{routing_key}"'.encode()))
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("body:")
    assert Alert.objects.count() == 0
