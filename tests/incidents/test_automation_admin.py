import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.automation.tasks import run_automation_task
from incidents.models import AutomationAction, AutomationRule, AutomationRun, IncidentEvent, Runbook
from tests.incidents.factories import IncidentFactory


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def button_rule(service):
    action = AutomationAction.objects.create(
        name="Scale out", url="https://tools.example.com/scale", payload_template='{"ref": "{{ ref }}"}', secret="k"
    )
    return AutomationRule.objects.create(action=action, service=service, auto=False)


def test_incident_page_offers_the_button_and_a_click_records_a_run(manager_client, manager, service, button_rule):
    incident = IncidentFactory(service=service)
    page = manager_client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()
    url = reverse("admin:incidents_incident_automation", args=[incident.pk, button_rule.pk])
    assert url in page
    assert "Run: Scale out" in page

    response = manager_client.post(url)

    assert response.status_code == 302
    run = AutomationRun.objects.get()
    assert run.requested_by == manager
    assert run.status == "pending"
    assert IncidentEvent.objects.filter(incident=incident, kind="automation").count() == 1


def test_run_refused_by_the_allow_list_shows_on_the_run_list(manager_client, manager, service, button_rule, settings):
    settings.FIREBREAK_AUTOMATION_ALLOWED_HOSTS = []
    incident = IncidentFactory(service=service)
    manager_client.post(reverse("admin:incidents_incident_automation", args=[incident.pk, button_rule.pk]))
    run_automation_task(AutomationRun.objects.get().pk)

    listing = manager_client.get(reverse("admin:incidents_automationrun_changelist") + "?status__exact=refused")

    assert "Refused" in listing.content.decode()
    assert (
        "tools.example.com"
        in manager_client.get(
            reverse("admin:incidents_automationrun_change", args=[AutomationRun.objects.get().pk])
        ).content.decode()
    )


def test_a_rule_that_does_not_apply_is_not_run(manager_client, service, button_rule):
    other = IncidentFactory()  # another service
    manager_client.post(reverse("admin:incidents_incident_automation", args=[other.pk, button_rule.pk]))
    assert not AutomationRun.objects.exists()


def test_action_admin_refuses_unknown_placeholders(manager_client):
    response = manager_client.post(
        reverse("admin:incidents_automationaction_add"),
        {
            "name": "Bad",
            "url": "https://tools.example.com/x",
            "method": "POST",
            "payload_template": '{"x": "{{ incident.__class__ }}"}',
            "secret": "k",
            "timeout_seconds": 5,
            "is_active": "on",
            "rules-TOTAL_FORMS": "0",
            "rules-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Unknown placeholder" in response.content.decode()
    assert not AutomationAction.objects.exists()


def test_run_changelist_query_count_is_constant(manager_client, service, button_rule, django_assert_max_num_queries):
    def make(count):
        for _ in range(count):
            AutomationRun.objects.create(
                action=button_rule.action,
                incident=IncidentFactory(service=service),
                rule=button_rule,
                created_at=timezone.now(),
            )

    make(3)
    with django_assert_max_num_queries(10):
        manager_client.get(reverse("admin:incidents_automationrun_changelist"))
    make(30)
    with django_assert_max_num_queries(10):
        response = manager_client.get(reverse("admin:incidents_automationrun_changelist"))
    assert response.status_code == 200


def test_api_requests_a_run_of_an_offered_rule(manager_api, service, button_rule):
    incident = IncidentFactory(service=service)

    created = manager_api.post(f"/api/v1/incidents/{incident.ref}/automation/", {"rule": button_rule.pk}, format="json")
    listed = manager_api.get(f"/api/v1/incidents/{incident.ref}/automation/")

    assert created.status_code == 201
    assert created.json()["action"] == "Scale out"
    assert [run["id"] for run in listed.json()] == [created.json()["id"]]
    other = AutomationRule.objects.create(action=button_rule.action, severity="P0")
    refused = manager_api.post(f"/api/v1/incidents/{incident.ref}/automation/", {"rule": other.pk}, format="json")
    assert refused.status_code == 400
    assert "rule" in refused.json()["errors"]


def test_incident_page_response_panels_run_constant_queries(manager_client, service, button_rule):
    from incidents.response import incident_response_prepare
    from incidents.runbooks.services import runbook_create

    incident = IncidentFactory(service=service)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])

    def add(count):
        for _ in range(count):
            runbook_create(service=service, title=f"Runbook {Runbook.objects.count()}", body="steps", author=None)
            AutomationRun.objects.create(action=button_rule.action, incident=incident, created_at=timezone.now())
        incident_response_prepare(incident_id=incident.pk)

    add(2)
    with CaptureQueriesContext(connection) as small:
        manager_client.get(url)
    add(10)
    with CaptureQueriesContext(connection) as large:
        response = manager_client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("Runbook ") >= 12
    assert len(large) == len(small)


def test_failed_run_can_be_run_again_from_the_run_list(manager_client, manager, service, button_rule, settings):
    settings.FIREBREAK_AUTOMATION_ALLOWED_HOSTS = []
    incident = IncidentFactory(service=service)
    manager_client.post(reverse("admin:incidents_incident_automation", args=[incident.pk, button_rule.pk]))
    first = AutomationRun.objects.get()
    run_automation_task(first.pk)

    manager_client.post(
        reverse("admin:incidents_automationrun_changelist"), {"action": "run_again", "_selected_action": [first.pk]}
    )

    again = AutomationRun.objects.exclude(pk=first.pk).get()
    assert again.status == "pending"
    assert again.requested_by == manager
    assert again.action == first.action


def test_action_secret_is_never_rendered_and_kept_when_left_empty(manager_client, button_rule):
    action = button_rule.action
    action.secret = "very-secret-value"
    action.save()
    url = reverse("admin:incidents_automationaction_change", args=[action.pk])

    assert "very-secret-value" not in manager_client.get(url).content.decode()
    response = manager_client.post(
        url,
        {
            "name": "Scale out v2",
            "url": action.url,
            "method": "POST",
            "payload_template": action.payload_template,
            "secret": "",
            "timeout_seconds": 5,
            "is_active": "on",
            "rules-TOTAL_FORMS": "1",
            "rules-INITIAL_FORMS": "1",
            "rules-0-id": button_rule.pk,
            "rules-0-action": action.pk,
            "rules-0-service": button_rule.service_id,
            "rules-0-severity": "",
            "rules-0-alert_name": "",
            "rules-0-is_active": "on",
        },
    )
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.name == "Scale out v2"
    assert action.secret == "very-secret-value"
