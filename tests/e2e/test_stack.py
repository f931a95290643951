"""The whole system with real parts: gunicorn, a Celery worker and beat on Redis, PostgreSQL, an SMTP server
on localhost and a real Prometheus Alertmanager; then the faults it must survive."""

import json
import urllib.request
from datetime import UTC, datetime, time, timedelta

import pytest

from incidents.alerting import services as alerting
from incidents.models import Escalation, Incident
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Notification, Rotation, RotationMember
from oncall.services import rotation_generate
from tests.e2e.conftest import _amtool, wait_for
from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import TeamFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
LABELS = ["alertname=HighErrorRate", "service=checkout", "severity=critical"]


def on_call_service(*, second_step_user=None, delay=5):
    """Checkout, owned by a team whose weekly rotation has one member, `oncall`; the policy pages the current
    holder, then (optionally) another user after `delay` minutes."""
    team = TeamFactory(slug="payments", timezone="Europe/Berlin")
    oncall = UserFactory(username="oncall", email="oncall@example.com")
    today = datetime.now(UTC).date()
    rotation = Rotation.objects.create(
        team=team,
        name="Primary",
        timezone="Europe/Berlin",
        unit="weekly",
        count=1,
        handoff_time=time(9),
        handoff_weekday=0,
        anchor_date=today - timedelta(days=today.weekday() + 7),
    )
    RotationMember.objects.create(rotation=rotation, user=oncall, position=0)
    rotation_generate(rotation=rotation)
    policy = EscalationPolicy.objects.create(team=team, name="Default")
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=delay)
    EscalationTarget.objects.create(step=step, kind="rotation_current", rotation=rotation)
    if second_step_user is not None:
        step = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=5)
        EscalationTarget.objects.create(step=step, kind="user", user=second_step_user)
    return ServiceFactory(slug="checkout", name="Checkout", team=team, escalation_policy=policy)


def post(url, payload) -> int:
    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status


def firing(fingerprint="e2e-1"):
    return {
        "version": "4",
        "status": "firing",
        "receiver": "firebreak",
        "groupKey": '{}:{alertname="HighErrorRate", service="checkout"}',
        "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
                "annotations": {"summary": "5xx rate above 5% on checkout"},
                "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def pages_to(smtp, address):
    """Pages (not handoff or shift reminders, which beat may also send) e-mailed to `address`."""
    return [
        message
        for recipients, message in smtp.messages
        if address in recipients and message["X-Firebreak-Notification"].startswith("page:")
    ]


def test_amtool_alert_becomes_an_incident_and_an_emailed_page_then_resolves(stack, alertmanager):
    service = on_call_service()
    _, key = alerting.integration_create(service=service, kind="alertmanager")
    stack.start_redis()
    stack.start_web()
    stack.start_worker()
    address = alertmanager(f"{stack.url}/hooks/alertmanager/{key}/")

    added = _amtool(address, "alert", "add", *LABELS, "--annotation=summary=5xx rate above 5% on checkout")
    assert added.returncode == 0, added.stderr
    assert wait_for(lambda: Incident.objects.exists(), timeout=30), stack.processes.log("web")
    incident = Incident.objects.get()
    assert (incident.severity, incident.source) == ("P1", "alert")

    assert wait_for(lambda: pages_to(stack.smtp, "oncall@example.com"), timeout=60), stack.processes.log("worker")
    page = pages_to(stack.smtp, "oncall@example.com")[0]
    assert page["Subject"] == f"[P1] {incident.ref} 5xx rate above 5% on checkout"
    assert f"{stack.url}/ack/" in page.get_body(preferencelist=("plain",)).get_content()

    end = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _amtool(address, "alert", "add", *LABELS, f"--end={end}").returncode == 0
    assert wait_for(lambda: Incident.objects.filter(status="resolved").exists(), timeout=60)
    assert Escalation.objects.get().status == "stopped"
    assert len(pages_to(stack.smtp, "oncall@example.com")) == 1


def test_broker_down_alert_is_accepted_and_paged_when_it_returns(stack):
    service = on_call_service()
    _, key = alerting.integration_create(service=service, kind="alertmanager")
    stack.start_redis()
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    stack.processes.stop("redis", kill=True)  # the broker dies

    assert post(f"{stack.url}/hooks/alertmanager/{key}/", firing()) in (200, 202)  # accepted all the same
    incident = Incident.objects.get()
    assert Escalation.objects.get(incident=incident).step_index == 0  # nobody paged yet
    assert stack.smtp.messages == []

    stack.start_redis()  # the broker returns: the sweep (beat, every minute) queues the lost step
    assert wait_for(lambda: pages_to(stack.smtp, "oncall@example.com"), timeout=180), stack.processes.log("beat")
    assert wait_for(lambda: Notification.objects.filter(payload__kind="page", status="sent").count() == 1, timeout=10)
    stack.smtp.wait_for(2, timeout=5)
    assert len(pages_to(stack.smtp, "oncall@example.com")) == 1, [m["Subject"] for _, m in stack.smtp.messages]


def test_worker_killed_during_escalation_loses_no_page_and_sends_none_twice(stack):
    backup = UserFactory(username="backup", email="backup@example.com")
    service = on_call_service(second_step_user=backup, delay=1)
    _, key = alerting.integration_create(service=service, kind="alertmanager")
    stack.start_redis()
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    assert post(f"{stack.url}/hooks/alertmanager/{key}/", firing()) in (200, 202)
    assert wait_for(lambda: pages_to(stack.smtp, "oncall@example.com"), timeout=60), stack.processes.log("worker")

    # the worker holds step two (due in a minute) unacknowledged; it is killed without warning
    stack.processes.stop("worker", kill=True)
    stack.start_worker("worker2")

    assert wait_for(lambda: pages_to(stack.smtp, "backup@example.com"), timeout=210), stack.processes.log("beat")
    stack.smtp.wait_for(3, timeout=5)
    subjects = [(m["To"], m["Subject"], m["X-Firebreak-Notification"]) for _, m in stack.smtp.messages]
    assert len(pages_to(stack.smtp, "oncall@example.com")) == 1, subjects
    assert len(pages_to(stack.smtp, "backup@example.com")) == 1, subjects
    assert Notification.objects.filter(payload__kind="page").count() == 2
