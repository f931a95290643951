import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import GameDay, Incident, Subscription
from tests.incidents.factories import ServiceFactory


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def game_day(service):
    game_day = GameDay.objects.create(
        title="Cache outage", hypothesis="We degrade gracefully", scheduled_for=timezone.now()
    )
    game_day.services.set([service])
    return game_day


def test_admin_start_action_declares_practice_incidents(manager_client, manager, game_day):
    response = manager_client.post(
        reverse("admin:incidents_gameday_changelist"),
        {"action": "start_selected", "_selected_action": [game_day.pk]},
        follow=True,
    )

    incident = Incident.objects.get(game_day=game_day)
    assert incident.is_practice
    assert incident.created_by == manager
    assert f"practice incidents {incident.ref}" in response.content.decode()
    page = manager_client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()
    assert "[PRACTICE] Cache outage" in page


def test_admin_setting_an_outcome_completes_a_running_game_day(manager_client, manager, game_day, service):
    manager_client.post(
        reverse("admin:incidents_gameday_changelist"), {"action": "start_selected", "_selected_action": [game_day.pk]}
    )
    response = manager_client.post(
        reverse("admin:incidents_gameday_change", args=[game_day.pk]),
        {
            "title": game_day.title,
            "hypothesis": game_day.hypothesis,
            "scheduled_for_0": timezone.now().strftime("%Y-%m-%d"),
            "scheduled_for_1": timezone.now().strftime("%H:%M:%S"),
            "services": [service.pk],
            "facilitator": "",
            "blast_radius": "",
            "abort_criteria": "",
            "outcome": "confirmed",
            "findings": "Cache misses were absorbed",
        },
    )

    assert response.status_code == 302
    game_day.refresh_from_db()
    assert game_day.status == GameDay.Status.COMPLETED
    assert game_day.outcome == "confirmed"
    assert game_day.findings == "Cache misses were absorbed"


def test_gameday_and_subscription_changelists_run_constant_queries(manager_client, django_assert_max_num_queries):
    for index in range(30):
        GameDay.objects.create(title=f"Drill {index}", hypothesis="h", scheduled_for=timezone.now())
        Subscription.objects.create(service=ServiceFactory(), email=f"s{index}@example.com")
    with django_assert_max_num_queries(10):
        assert manager_client.get(reverse("admin:incidents_gameday_changelist")).status_code == 200
    with django_assert_max_num_queries(10):
        assert manager_client.get(reverse("admin:incidents_subscription_changelist")).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "admin:incidents_runbook_add",
        "admin:incidents_runbook_changelist",
        "admin:incidents_automationaction_add",
        "admin:incidents_automationaction_changelist",
        "admin:incidents_automationrule_add",
        "admin:incidents_automationrun_changelist",
        "admin:incidents_teamchatsettings_add",
        "admin:incidents_subscription_add",
        "admin:incidents_gameday_add",
        "admin:incidents_incident_add",
    ],
)
def test_response_admin_pages_render(manager_client, name):
    assert manager_client.get(reverse(name)).status_code == 200


def test_responder_sees_runbooks_and_runs_but_cannot_edit_actions(client, responder):
    client.force_login(responder)
    assert client.get(reverse("admin:incidents_runbook_changelist")).status_code == 200
    assert client.get(reverse("admin:incidents_automationrun_changelist")).status_code == 200
    assert client.get(reverse("admin:incidents_automationaction_add")).status_code == 403
