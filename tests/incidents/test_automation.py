import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from incidents import services
from incidents.automation import services as automation
from incidents.automation import templating
from incidents.automation.tasks import run_automation_task
from incidents.models import AutomationAction, AutomationRule, AutomationRun, IncidentEvent
from incidents.response import incident_response_prepare
from oncall import egress
from oncall.errors import DomainError
from tests.incidents.factories import IncidentFactory
from tests.incidents.response_helpers import attach_alert

SECRET = "s3cret-for-tests"


@pytest.fixture
def allow_local(settings, local_server):
    settings.FIREBREAK_AUTOMATION_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    return local_server


def _action(url, **kwargs):
    defaults = {
        "name": "Restart checkout",
        "url": url,
        "payload_template": '{"incident": "{{ ref }}", "title": "{{ title }}", "severity": "{{severity}}"}',
        "secret": SECRET,
        "timeout_seconds": 2,
    }
    defaults.update(kwargs)
    return AutomationAction.objects.create(**defaults)


def test_run_on_allow_listed_host_is_sent_signed_and_recorded_on_the_timeline(allow_local, service, responder):
    incident = IncidentFactory(service=service, title='Checkout "down"', severity="P1")
    action = _action(allow_local.url("/restart"))

    run = automation.automation_run_request(action=action, incident=incident, actor=responder)
    run_automation_task(run.pk)

    (request,) = allow_local.requests
    assert request.method == "POST"
    assert request.path == "/restart"
    assert request.json() == {"incident": incident.ref, "title": 'Checkout "down"', "severity": "P1"}
    timestamp = request.headers["X-Firebreak-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Firebreak-Signature"] == f"sha256={expected}"
    run.refresh_from_db()
    assert run.status == AutomationRun.Status.SUCCEEDED
    assert run.response_code == 200
    assert run.response_body == '{"ok": true}'
    assert run.requested_by == responder
    assert run.duration_ms is not None
    assert run.finished_at
    messages = list(
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.AUTOMATION).values_list(
            "message", flat=True
        )
    )
    assert messages[0] == "Automated action Restart checkout requested by responder"
    assert messages[1].startswith("Automated action Restart checkout succeeded (HTTP 200 in ")


def test_run_twice_sends_once(allow_local, service, responder):
    action = _action(allow_local.url())
    run = automation.automation_run_request(action=action, incident=IncidentFactory(service=service), actor=responder)

    assert run_automation_task(run.pk) == "succeeded"
    assert run_automation_task(run.pk) is None
    assert len(allow_local.requests) == 1


def test_host_off_the_allow_list_is_refused_and_recorded(allow_local, settings, service, responder):
    settings.FIREBREAK_AUTOMATION_ALLOWED_HOSTS = ["tools.example.com"]
    action = _action(allow_local.url())
    incident = IncidentFactory(service=service)
    run = automation.automation_run_request(action=action, incident=incident, actor=responder)

    run_automation_task(run.pk)

    run.refresh_from_db()
    assert run.status == AutomationRun.Status.REFUSED
    assert run.error == "host '127.0.0.1' is not on the allow-list"
    assert allow_local.requests == []
    assert IncidentEvent.objects.filter(incident=incident, message__contains="refused").exists()


def test_loopback_address_is_refused_unless_its_network_is_allow_listed(allow_local, settings, service, responder):
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = []
    action = _action(allow_local.url())
    run = automation.automation_run_request(action=action, incident=IncidentFactory(service=service), actor=responder)

    run_automation_task(run.pk)

    run.refresh_from_db()
    assert run.status == AutomationRun.Status.REFUSED
    assert "loopback address 127.0.0.1" in run.error
    assert allow_local.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/x", "private address 10.1.2.3"),
        ("http://169.254.169.254/latest/meta-data", "link-local address 169.254.169.254"),
        ("http://[::1]:8080/x", "loopback address ::1"),
        ("http://localhost/x", "loopback address"),
        ("ftp://10.1.2.3/x", "only http and https"),
        ("http://user:pw@10.1.2.3/x", "credentials"),
    ],
)
def test_check_destination_refuses_non_public_addresses(url, reason):
    allowed = ["10.1.2.3", "169.254.169.254", "::1", "localhost"]
    with pytest.raises(egress.EgressRefused, match=reason.replace(".", r"\.")):
        egress.check_destination(url, allowed_hosts=allowed, allowed_networks=[])


def test_check_destination_allows_a_listed_network_and_wildcard_hosts():
    destination = egress.check_destination(
        "http://10.1.2.3:9000/restart?x=1", allowed_hosts=["10.1.2.3"], allowed_networks=["10.0.0.0/8"]
    )
    assert (destination.address, destination.port, destination.path) == ("10.1.2.3", 9000, "/restart?x=1")
    with pytest.raises(egress.EgressRefused, match="not on the allow-list"):
        egress.check_destination("http://evil.example.org/", allowed_hosts=["*.example.com"], allowed_networks=[])


def test_error_status_is_a_failed_run_visible_with_its_response(allow_local, service, responder):
    allow_local.status = 503
    allow_local.reply = b"x" * 5000
    action = _action(allow_local.url())
    run = automation.automation_run_request(action=action, incident=IncidentFactory(service=service), actor=responder)

    run_automation_task(run.pk)

    run.refresh_from_db()
    assert run.status == AutomationRun.Status.FAILED
    assert run.response_code == 503
    assert len(run.response_body) == 2000
    assert run.error == "HTTP 503"


def test_timeout_is_a_failed_run(allow_local, service, responder):
    allow_local.delay = 2.5
    action = _action(allow_local.url(), timeout_seconds=1)
    run = automation.automation_run_request(action=action, incident=IncidentFactory(service=service), actor=responder)

    run_automation_task(run.pk)

    run.refresh_from_db()
    assert run.status == AutomationRun.Status.FAILED
    assert "timed out" in run.error.lower()


def test_automatic_rule_runs_once_when_a_matching_incident_is_declared(allow_local, service, responder):
    action = _action(allow_local.url())
    AutomationRule.objects.create(action=action, service=service, severity="P1", alert_name="HighLatency", auto=True)
    AutomationRule.objects.create(action=_action(allow_local.url(), name="Other"), severity="P0", auto=True)
    incident = services.incident_declare(title="Slow", severity="P1", service=service, actor=responder)
    attach_alert(incident, alertname="HighLatency")

    incident_response_prepare(incident_id=incident.pk)
    incident_response_prepare(incident_id=incident.pk)

    (run,) = AutomationRun.objects.filter(incident=incident)
    assert run.rule.action == action
    assert run.requested_by is None
    run_automation_task(run.pk)
    assert len(allow_local.requests) == 1
    assert IncidentEvent.objects.filter(incident=incident, message__contains=f"by rule #{run.rule_id}").exists()


def test_rule_on_another_alert_does_not_fire(allow_local, service, responder):
    AutomationRule.objects.create(action=_action(allow_local.url()), alert_name="DiskFull", auto=True)
    incident = services.incident_declare(title="Slow", severity="P1", service=service, actor=responder)
    attach_alert(incident, alertname="HighLatency")

    incident_response_prepare(incident_id=incident.pk)

    assert not AutomationRun.objects.exists()


def test_action_on_a_resolved_incident_is_refused(service, responder):
    action = _action("https://tools.example.com/restart")
    incident = IncidentFactory(service=service, status="cancelled", closure_reason="cancelled")
    with pytest.raises(DomainError, match="actions run only on open incidents"):
        automation.automation_run_request(action=action, incident=incident, actor=responder)
    assert not AutomationRun.objects.exists()


def test_template_has_only_whitelisted_placeholders():
    with pytest.raises(ValidationError) as error:
        templating.check_template('{"x": "{{ incident.service.team.__class__ }}"}')
    assert "payload_template" in error.value.message_dict
    body = templating.render('{"t": "{{ title }}"}', {"title": 'say "hi"\n'})
    assert json.loads(body) == {"t": 'say "hi"\n'}


def test_sweep_requeues_runs_left_pending(service, responder):
    action = _action("https://tools.example.com/x")
    incident = IncidentFactory(service=service)
    with time_machine.travel(timezone.now() - timedelta(minutes=5)):
        old = automation.automation_run_request(action=action, incident=incident, actor=responder)
    automation.automation_run_request(action=action, incident=incident, actor=responder)  # just queued

    assert automation.automation_runs_requeue() == [old.pk]


def test_invalid_stored_template_refuses_the_run(allow_local, service, responder):
    action = _action(allow_local.url(), payload_template='{"x": "{{ secret_key }}"}')
    run = automation.automation_run_request(action=action, incident=IncidentFactory(service=service), actor=responder)

    run_automation_task(run.pk)

    run.refresh_from_db()
    assert run.status == AutomationRun.Status.REFUSED
    assert run.error.startswith("payload template: Unknown placeholder(s) secret_key")
    assert allow_local.requests == []


def test_action_timeout_is_bounded_in_the_database(db):
    with pytest.raises(IntegrityError):
        _action("https://tools.example.com/x", timeout_seconds=0)


def test_a_rule_runs_automatically_once_per_incident_in_the_database(service):
    action = _action("https://tools.example.com/x")
    rule = AutomationRule.objects.create(action=action, auto=True)
    incident = IncidentFactory(service=service)
    AutomationRun.objects.create(action=action, incident=incident, rule=rule, created_at=timezone.now())
    with pytest.raises(IntegrityError):
        AutomationRun.objects.create(action=action, incident=incident, rule=rule, created_at=timezone.now())


def test_only_a_final_run_has_a_finish_time(service):
    with pytest.raises(IntegrityError):
        AutomationRun.objects.create(
            action=_action("https://tools.example.com/x"),
            incident=IncidentFactory(service=service),
            status="running",
            created_at=timezone.now(),
            finished_at=timezone.now(),
        )
