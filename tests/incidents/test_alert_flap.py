"""Flap suppression: an alert resolving within its route's delay never opens an incident (noise);
one still firing opens it when the countdown task or the sweep runs. Tasks are called directly."""

from datetime import timedelta

import pytest

from incidents.alerting import tasks
from incidents.models import Alert, AlertRoute, Incident, MaintenanceWindow
from tests.incidents.alerting_helpers import NOW, alertmanager_url, make_integration, post_json, reference


@pytest.fixture
def key(service, frozen):
    integration, key = make_integration(service, "alertmanager")
    AlertRoute.objects.create(integration=integration, position=1, flap_delay=timedelta(minutes=3))
    return key


def test_flap_delay_holds_the_incident_and_schedules_the_task(client, key, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))

    assert response.status_code == 200
    alert = Alert.objects.get()
    assert (alert.incident, alert.incident_due_at) == (None, NOW + timedelta(minutes=3))
    assert Incident.objects.count() == 0
    assert len(callbacks) == 1  # open_alert_incident_task with a countdown, enqueued on commit


def test_flap_resolved_within_the_delay_is_noise_and_never_an_incident(client, key, frozen):
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    frozen.shift(timedelta(minutes=1))
    post_json(client, alertmanager_url(key), reference("alertmanager-resolved.json"))

    alert = Alert.objects.get()
    assert (alert.status, alert.suppressed, alert.incident_due_at) == ("resolved", "flap", None)
    frozen.shift(timedelta(minutes=5))
    assert tasks.open_alert_incident_task(alert.pk) is None
    assert tasks.open_due_alert_incidents() == 0
    assert Incident.objects.count() == 0


def test_flap_task_opens_the_incident_once_when_still_firing(client, key, frozen):
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    alert = Alert.objects.get()
    frozen.shift(timedelta(minutes=2))
    assert tasks.open_alert_incident_task(alert.pk) is None  # early (a clock skew, a retry): nothing
    frozen.shift(timedelta(minutes=1))

    incident_id = tasks.open_alert_incident_task(alert.pk)

    incident = Incident.objects.get()
    assert incident_id == incident.pk
    assert (incident.severity, incident.source) == ("P1", "alert")
    alert.refresh_from_db()
    assert (alert.incident, alert.incident_due_at) == (incident, None)
    assert tasks.open_alert_incident_task(alert.pk) is None  # delivered twice: still one incident
    assert tasks.open_due_alert_incidents() == 0
    assert Incident.objects.count() == 1


def test_flap_sweep_opens_what_a_lost_task_did_not(client, key, frozen):
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    frozen.shift(timedelta(minutes=2))
    assert tasks.open_due_alert_incidents() == 0
    frozen.shift(timedelta(minutes=2))

    assert tasks.open_due_alert_incidents() == 1

    assert Alert.objects.get().incident == Incident.objects.get()


def test_flap_second_alert_of_a_group_joins_the_open_incident(client, key, frozen):
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    frozen.shift(timedelta(minutes=3))
    tasks.open_due_alert_incidents()
    payload = reference("alertmanager-firing.json")
    payload["alerts"][0]["fingerprint"] = "other"
    payload["alerts"][0]["labels"]["instance"] = "b"

    post_json(client, alertmanager_url(key), payload)

    incident = Incident.objects.get()
    assert set(Alert.objects.values_list("incident", flat=True)) == {incident.pk}


def test_flap_maintenance_started_during_the_delay_suppresses(client, key, service, frozen):
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    MaintenanceWindow.objects.create(service=service, starts_at=NOW, ends_at=NOW + timedelta(hours=1), reason="x")
    frozen.shift(timedelta(minutes=3))

    assert tasks.open_due_alert_incidents() == 0

    assert Alert.objects.get().suppressed == "maintenance"
    assert Incident.objects.count() == 0


def test_flap_broker_down_still_answers_2xx_and_the_sweep_opens_the_incident(
    client, key, frozen, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setattr(tasks.open_alert_incident_task, "apply_async", broker_down)  # the outside world fails
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))

    assert response.status_code == 200
    assert Alert.objects.get().incident_due_at is not None
    frozen.shift(timedelta(minutes=3))
    assert tasks.open_due_alert_incidents() == 1
    assert Incident.objects.count() == 1
