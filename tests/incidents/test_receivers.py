"""The Alertmanager and generic webhook receivers, end to end through HTTP, with the real reference payloads."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from incidents.models import Alert, Incident, MaintenanceWindow
from tests.incidents.alerting_helpers import (
    NOW,
    alertmanager_url,
    generic_url,
    make_integration,
    post_json,
    reference,
)


@pytest.fixture
def am(service):
    return make_integration(service, "alertmanager")


def test_alertmanager_firing_opens_one_incident_with_the_routed_severity(client, am, service, frozen):
    integration, key = am

    response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    alert = Alert.objects.get()
    assert alert.fingerprint == "7d2d332feada5c59"
    assert alert.group_key == '{}:{alertname="HighErrorRate", service="checkout"}'
    assert alert.status == "firing"
    assert alert.starts_at == datetime(2026, 11, 27, 9, 11, 30, 912352, tzinfo=UTC)  # nanoseconds cut to µs
    assert alert.ends_at is None  # 0001-01-01T00:00:00Z means none
    assert alert.labels["severity"] == "critical"
    assert alert.severity == "P1"
    incident = Incident.objects.get()
    assert alert.incident == incident
    assert response.json()["incidents_opened"] == [incident.ref]
    assert (incident.severity, incident.status, incident.source) == ("P1", "triggered", "alert")
    assert incident.service == service
    assert incident.title == "5xx rate above 5% on checkout"
    assert incident.detected_at == alert.starts_at
    assert list(incident.events.values_list("kind", flat=True)) == ["declared"]


def test_alertmanager_resolved_resolves_the_alert_and_the_incident(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    frozen.shift(timedelta(seconds=30))

    response = post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert alert.ends_at == datetime(2026, 11, 27, 9, 11, 32, tzinfo=UTC)
    incident = Incident.objects.get()
    assert incident.status == "resolved"
    assert incident.events.get(kind="resolved").message.startswith("Auto-resolved")


def test_alertmanager_resolved_keeps_the_incident_open_without_auto_resolve(client, service, frozen):
    _, key = make_integration(service, "alertmanager", auto_resolve=False)
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))

    assert Alert.objects.get().status == "resolved"
    assert Incident.objects.get().status == "triggered"


def test_alertmanager_repeats_are_one_alert_and_one_incident(client, service, frozen):
    _, key = make_integration(service, "alertmanager", rate_limit_per_minute=5000)
    payload = reference("alertmanager-firing.json")
    for _ in range(1000):
        assert post_json(client, alertmanager_url(key), payload).status_code == 200

    alert = Alert.objects.get()
    assert alert.repeat_count == 1000
    assert Incident.objects.count() == 1
    assert Incident.objects.get().events.count() == 1


def _group_payload(status_by_fingerprint):
    payload = reference("alertmanager-firing.json")
    template = payload["alerts"][0]
    payload["alerts"] = []
    for fingerprint, status in status_by_fingerprint.items():
        alert = copy.deepcopy(template)
        alert["fingerprint"] = fingerprint
        alert["labels"]["instance"] = fingerprint
        alert["status"] = status
        if status == "resolved":
            alert["endsAt"] = "2026-11-27T09:11:50Z"
        payload["alerts"].append(alert)
    return payload


def test_alertmanager_group_shares_one_incident_and_resolves_when_every_alert_has(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), _group_payload({"a1": "firing", "a2": "firing"}))
    assert Alert.objects.count() == 2
    incident = Incident.objects.get()
    assert set(Alert.objects.values_list("incident", flat=True)) == {incident.pk}

    post_json(client, alertmanager_url(key), _group_payload({"a1": "resolved", "a2": "firing"}))
    incident.refresh_from_db()
    assert incident.status == "triggered"  # a2 still fires

    post_json(client, alertmanager_url(key), _group_payload({"a1": "resolved", "a2": "resolved"}))
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert Incident.objects.count() == 1


def test_alertmanager_alert_firing_again_after_resolution_opens_a_new_incident(client, am, frozen):
    _, key = am
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))
    post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))  # resent resolution
    assert Alert.objects.get().repeat_count == 2

    payload = reference("alertmanager-firing.json")
    payload["alerts"][0]["startsAt"] = "2026-11-27T09:11:55Z"
    post_json(client, alertmanager_url(key), payload)

    assert Alert.objects.count() == 2
    assert Incident.objects.filter(status="triggered").count() == 1
    assert Incident.objects.filter(status="resolved").count() == 1


def test_alertmanager_resolution_never_seen_firing_is_stored_without_incident(client, am, frozen):
    _, key = am
    response = post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))
    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.status, alert.incident) == ("resolved", None)
    assert Incident.objects.count() == 0


def test_alertmanager_info_severity_is_stored_as_informational(client, am, frozen):
    _, key = am
    payload = reference("alertmanager-firing.json")
    payload["alerts"][0]["labels"]["severity"] = "info"
    post_json(client, alertmanager_url(key), payload)

    alert = Alert.objects.get()
    assert (alert.actionable, alert.suppressed, alert.incident) == (False, "informational", None)
    assert Incident.objects.count() == 0


def test_alertmanager_during_maintenance_stores_the_alert_and_opens_no_incident(client, am, service, frozen):
    _, key = am
    MaintenanceWindow.objects.create(
        service=service, starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1), reason="DB upgrade"
    )
    response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.suppressed, alert.incident) == ("maintenance", None)
    assert Incident.objects.count() == 0


def test_alertmanager_after_maintenance_opens_an_incident(client, am, service, frozen):
    _, key = am
    MaintenanceWindow.objects.create(
        service=service, starts_at=NOW - timedelta(hours=2), ends_at=NOW - timedelta(hours=1), reason="over"
    )
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    assert Incident.objects.count() == 1


def _broken(mutate):
    payload = reference("alertmanager-firing.json")
    mutate(payload)
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (_broken(lambda p: p.pop("groupKey")), "groupKey"),
        (_broken(lambda p: p.update(version="3")), "version"),
        (_broken(lambda p: p.update(alerts=[])), "alerts"),
        (_broken(lambda p: p["alerts"][0].update(status="pending")), "alerts[0].status"),
        (_broken(lambda p: p["alerts"][0].update(startsAt="2026-11-27T09:11:30")), "alerts[0].startsAt"),
        (_broken(lambda p: p["alerts"][0].update(startsAt="yesterday")), "alerts[0].startsAt"),
        (_broken(lambda p: p["alerts"][0].update(endsAt="2026-11-27T08:00:00Z")), "alerts[0].endsAt"),
        (_broken(lambda p: p["alerts"][0]["labels"].update(severity=5)), "alerts[0].labels.severity"),
        (_broken(lambda p: p["alerts"][0].pop("labels")), "alerts[0].labels"),
    ],
)
def test_alertmanager_malformed_body_is_400_naming_the_field_and_stores_nothing(client, am, payload, field, frozen):
    _, key = am
    response = post_json(client, alertmanager_url(key), payload)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"]
    assert body["detail"].startswith(field)
    assert Alert.objects.count() == 0
    assert Incident.objects.count() == 0


def test_receiver_unknown_key_is_404(client, am, service, frozen):
    _, generic_key = make_integration(service, "generic")
    payload = reference("alertmanager-firing.json")
    assert post_json(client, alertmanager_url("0" * 32), payload).status_code == 404
    assert post_json(client, alertmanager_url("x" * 500), payload).status_code == 404
    assert post_json(client, alertmanager_url(generic_key), payload).status_code == 404  # a key of another kind
    assert Alert.objects.count() == 0


def test_receiver_rate_limit_is_429_until_the_next_minute(client, service, frozen):
    _, key = make_integration(service, "alertmanager", rate_limit_per_minute=3)
    payload = reference("alertmanager-firing.json")
    assert [post_json(client, alertmanager_url(key), payload).status_code for _ in range(3)] == [200] * 3

    refused = post_json(client, alertmanager_url(key), payload)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused["Retry-After"] == "60"
    assert Alert.objects.get().repeat_count == 3  # the refused one was not stored
    frozen.shift(timedelta(minutes=1))
    assert post_json(client, alertmanager_url(key), payload).status_code == 200


def test_receiver_huge_body_is_413(client, am):
    _, key = am
    response = post_json(client, alertmanager_url(key), b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert Alert.objects.count() == 0


def test_receiver_needs_post_and_no_session_or_csrf(client, am, frozen):
    _, key = am
    assert client.get(alertmanager_url(key)).status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post_json(strict, alertmanager_url(key), reference("alertmanager-firing.json")).status_code == 200


def test_receiver_queries_do_not_grow_with_repeats(client, am, frozen, django_assert_max_num_queries):
    _, key = am
    payload = reference("alertmanager-firing.json")
    post_json(client, alertmanager_url(key), payload)
    with django_assert_max_num_queries(12):
        post_json(client, alertmanager_url(key), payload)


# --- generic ------------------------------------------------------------------------------------------------------


def test_generic_firing_then_resolved_by_dedup_key(client, service, frozen):
    _, key = make_integration(service, "generic")
    firing = {
        "title": "Disk almost full on db-1",
        "dedup_key": "disk-db-1",
        "severity": "error",
        "labels": {"host": "db-1"},
        "description": "92% used",
        "starts_at": "2026-11-27T09:00:00+01:00",
    }
    response = post_json(client, generic_url(key), firing)

    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.starts_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert (alert.fingerprint, alert.severity, alert.labels["host"]) == ("disk-db-1", "P2", "db-1")
    incident = Incident.objects.get()
    assert (incident.title, incident.severity) == ("Disk almost full on db-1", "P2")
    assert "92% used" in incident.summary

    response = post_json(client, generic_url(key), {"status": "resolved", "dedup_key": "disk-db-1"})

    assert response.status_code == 200
    assert Alert.objects.get().status == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_generic_without_dedup_key_deduplicates_by_title_and_labels(client, service, frozen):
    _, key = make_integration(service, "generic")
    for _ in range(3):
        post_json(client, generic_url(key), {"title": "Queue backlog", "labels": {"queue": "mail"}})
    assert Alert.objects.get().repeat_count == 3
    assert Incident.objects.get().severity == "P3"  # no severity label: the lowest that still opens an incident


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"severity": "critical"}, "title"),
        ({"status": "resolved"}, "dedup_key"),
        ({"title": "x", "status": "gone"}, "status"),
        ({"title": "x", "labels": ["a"]}, "labels"),
        ({"title": "x", "starts_at": "2026-11-27 09:00"}, "starts_at"),
    ],
)
def test_generic_malformed_is_400_naming_the_field(client, service, payload, field):
    _, key = make_integration(service, "generic")
    response = post_json(client, generic_url(key), json.dumps(payload))
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Alert.objects.count() == 0


def test_alertmanager_more_severe_alert_joining_a_group_raises_the_incident_severity(client, am, frozen):
    _, key = am
    warning = _group_payload({"a1": "firing"})
    warning["alerts"][0]["labels"]["severity"] = "warning"
    post_json(client, alertmanager_url(key), warning)
    incident = Incident.objects.get()
    assert incident.severity == "P3"

    post_json(client, alertmanager_url(key), _group_payload({"a1": "firing", "a2": "firing"}))  # a2 is critical

    incident.refresh_from_db()
    assert incident.severity == "P1"
    assert incident.events.filter(kind="severity_changed").count() == 1
    info = _group_payload({"a3": "firing"})
    info["alerts"][0]["labels"]["severity"] = "warning"
    post_json(client, alertmanager_url(key), info)
    incident.refresh_from_db()
    assert incident.severity == "P1"  # never lowered


def test_alertmanager_very_long_group_key_still_groups(client, am, frozen):
    _, key = am
    long_key = "{}:{" + ", ".join(f'label{i}="{"v" * 40}"' for i in range(150)) + "}"
    assert len(long_key) > 5000
    first = _group_payload({"a1": "firing"})
    second = _group_payload({"a2": "firing"})
    first["groupKey"] = second["groupKey"] = long_key

    assert post_json(client, alertmanager_url(key), first).status_code == 200
    assert post_json(client, alertmanager_url(key), second).status_code == 200

    assert Incident.objects.count() == 1
    assert {alert.group_key[:7] for alert in Alert.objects.all()} == {"sha256:"}
    assert Alert.objects.get(fingerprint="a1").raw  # the alert itself is kept as sent
