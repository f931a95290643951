from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Incident, StatusUpdate
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import UserFactory

CHANGELIST = reverse("admin:incidents_incident_changelist")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def responder_client(client, responder):
    client.force_login(responder)
    return client


def _changelist_queries(client, count, query=""):
    services_ = ServiceFactory.create_batch(3)
    commanders = UserFactory.create_batch(3)
    for index in range(count):
        IncidentFactory(service=services_[index % 3], commander=commanders[index % 3])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("query", ["", "?severity__exact=P2&status__exact=triggered", "?q=INC-2000-3"])
def test_incident_changelist_query_count_is_constant(manager_client, query):
    small, _ = _changelist_queries(manager_client, 10, query)
    Incident.objects.all().delete()
    large, response = _changelist_queries(manager_client, 500, query)
    assert small == large
    assert large <= 15
    if not query:
        assert response.content.count(b'class="action-select"') == 50  # one page of 50


def test_incident_changelist_shows_badges_and_team(manager_client):
    incident = IncidentFactory(severity="P0")
    response = manager_client.get(CHANGELIST)
    content = response.content.decode()
    assert incident.ref in content
    assert incident.service.team.name in content
    assert "#b3001b" in content  # the P0 badge colour


def test_admin_declare_form_calls_the_service(responder_client, responder):
    service = ServiceFactory()
    response = responder_client.post(
        reverse("admin:incidents_incident_add"),
        {"title": "Checkout down", "severity": "P1", "service": service.pk, "summary": "", "is_practice": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert incident.created_by == responder
    assert incident.channel
    assert list(incident.events.values_list("kind", flat=True)) == ["declared"]


def test_admin_transition_buttons(responder_client, responder):
    incident = services.incident_declare(title="x", severity="P2", service=ServiceFactory(), actor=responder)
    url = reverse("admin:incidents_incident_transition", args=[incident.pk, "acknowledge"])
    assert responder_client.get(url).status_code == 405

    response = responder_client.post(url)

    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    page = responder_client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()
    assert "is acknowledged" in page
    assert "/transition/resolve/" in page


def test_admin_refused_transition_shows_the_message(responder_client, responder):
    incident = services.incident_declare(title="x", severity="P2", service=ServiceFactory(), actor=responder)
    services.incident_cancel(incident=incident, actor=responder, reason="cancelled")
    url = reverse("admin:incidents_incident_transition", args=[incident.pk, "resolve"])
    response = responder_client.post(url, follow=True)
    assert "cannot be resolved" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == "cancelled"


def test_admin_bulk_acknowledge_action(responder_client, responder):
    service = ServiceFactory()
    first = services.incident_declare(title="a", severity="P2", service=service, actor=responder)
    second = services.incident_declare(title="b", severity="P2", service=service, actor=responder)
    response = responder_client.post(
        CHANGELIST, {"action": "acknowledge_selected", "_selected_action": [first.pk, second.pk]}
    )
    assert response.status_code == 302
    assert set(Incident.objects.values_list("status", flat=True)) == {"acknowledged"}


def _change_data(incident, **overrides):
    data = {
        "title": incident.title,
        "summary": incident.summary,
        "severity": incident.severity,
        "commander": incident.commander_id or "",
        "comms_lead": incident.comms_lead_id or "",
        "started_at_0": incident.started_at.strftime("%Y-%m-%d"),
        "started_at_1": incident.started_at.strftime("%H:%M:%S"),
        "detected_at_0": incident.detected_at.strftime("%Y-%m-%d"),
        "detected_at_1": incident.detected_at.strftime("%H:%M:%S"),
        "status_updates-TOTAL_FORMS": "1",
        "status_updates-INITIAL_FORMS": "0",
        "status_updates-0-message": "",
        "status_updates-0-audience": "stakeholders",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "role_assignments-TOTAL_FORMS": "0",
        "role_assignments-INITIAL_FORMS": "0",
    }
    for name in ("acknowledged_at", "mitigated_at", "resolved_at"):
        data[f"{name}_0"] = data[f"{name}_1"] = ""
    data.update(overrides)
    return data


def test_admin_change_form_adds_status_update_and_corrects_times(manager_client, manager):
    incident = services.incident_declare(title="x", severity="P1", service=ServiceFactory(), actor=manager)
    earlier = incident.started_at - timedelta(hours=2)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    data = _change_data(
        incident,
        started_at_0=earlier.strftime("%Y-%m-%d"),
        started_at_1=earlier.strftime("%H:%M:%S"),
        **{"status_updates-0-message": "Rolling back the deploy"},
    )
    response = manager_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    incident.refresh_from_db()
    assert abs((incident.started_at - earlier).total_seconds()) < 1
    assert incident.events.filter(kind="times_corrected").exists()
    assert StatusUpdate.objects.get(incident=incident).author == manager


def test_admin_change_form_rejects_time_order_and_changes_nothing(manager_client, manager):
    incident = services.incident_declare(title="x", severity="P1", service=ServiceFactory(), actor=manager)
    later = timezone.now() - timedelta(seconds=1)
    too_early = incident.started_at - timedelta(hours=3)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    data = _change_data(
        incident,
        detected_at_0=too_early.strftime("%Y-%m-%d"),
        detected_at_1=too_early.strftime("%H:%M:%S"),
    )
    response = manager_client.post(url, data)
    assert response.status_code == 200
    assert "detected_at" in response.content.decode()
    incident.refresh_from_db()
    assert incident.detected_at >= later - timedelta(minutes=1)
    assert not incident.events.filter(kind="times_corrected").exists()


def test_changelist_count_is_capped(manager_client, monkeypatch):
    from incidents.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    IncidentFactory.create_batch(8)
    with CaptureQueriesContext(connection) as queries:
        response = manager_client.get(CHANGELIST)
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert any("LIMIT 6" in sql for sql in counts)  # never an unbounded COUNT(*) over every incident
    assert all("LIMIT" in sql for sql in counts)


def test_admin_responder_cannot_correct_times(responder_client, responder):
    """The change form shows a responder the times read-only; a posted correction changes nothing."""
    incident = services.incident_declare(title="x", severity="P1", service=ServiceFactory(), actor=responder)
    earlier = incident.started_at - timedelta(hours=2)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    form = responder_client.get(url).context["adminform"].form
    assert "started_at" not in form.fields

    data = _change_data(incident, started_at_0=earlier.strftime("%Y-%m-%d"), started_at_1=earlier.strftime("%H:%M:%S"))
    response = responder_client.post(url, data)

    assert response.status_code == 302
    started = incident.started_at
    incident.refresh_from_db()
    assert incident.started_at == started
    assert not incident.events.filter(kind="times_corrected").exists()


# --- refusals come back on the form, the input kept, nothing half-saved (issue 13) -----------------------------


def _declare_data(service, **overrides):
    return {
        "title": "Checkout down",
        "severity": "P1",
        "service": service.pk,
        "summary": "5xx on every payment",
        "started_at_0": "",
        "started_at_1": "",
        "detected_at_0": "",
        "detected_at_1": "",
        "commander": "",
        "repeat_of": "",
        **overrides,
    }


def test_admin_declare_with_future_detected_at_shows_the_field_and_keeps_the_form(responder_client):
    service = ServiceFactory(name="Checkout")
    future = timezone.now() + timedelta(hours=2)
    response = responder_client.post(
        reverse("admin:incidents_incident_add"),
        _declare_data(service, detected_at_0=future.strftime("%Y-%m-%d"), detected_at_1=future.strftime("%H:%M:%S")),
    )
    assert response.status_code == 200  # not a 500
    form = response.context["adminform"].form
    assert list(form.errors) == ["detected_at"]
    message = form.errors["detected_at"][0]
    assert message.startswith("Detected at (")
    assert "cannot be in the future" in message
    assert "UTC" in message
    assert "T" not in message.split("(")[1][:11]
    html = response.content.decode()
    assert 'value="Checkout down"' in html
    assert "5xx on every payment" in html
    assert not Incident.objects.exists()


def test_admin_declare_with_repeat_of_links_the_earlier_incident(responder_client):
    service = ServiceFactory()
    earlier = IncidentFactory(service=service, status="closed")
    response = responder_client.post(
        reverse("admin:incidents_incident_add"), _declare_data(service, repeat_of=earlier.pk)
    )
    assert response.status_code == 302
    assert Incident.objects.exclude(pk=earlier.pk).get().repeat_of == earlier


def test_admin_change_form_refused_role_keeps_the_whole_edit_out(manager_client, manager):
    """Title, severity and a time correction are fine, the new commander is not (inactive): one transaction, so
    nothing is saved, the form comes back with the refusal on the field, and no success is reported."""
    incident = services.incident_declare(title="x", severity="P2", service=ServiceFactory(), actor=manager)
    gone = UserFactory(username="gone", is_active=False)
    earlier = incident.started_at - timedelta(hours=1)
    events = incident.events.count()
    response = manager_client.post(
        reverse("admin:incidents_incident_change", args=[incident.pk]),
        _change_data(
            incident,
            title="Checkout down",
            severity="P1",
            commander=gone.pk,
            started_at_0=earlier.strftime("%Y-%m-%d"),
            started_at_1=earlier.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 200
    assert "gone is not an active user." in response.context["adminform"].form.errors["commander"]
    assert 'value="Checkout down"' in response.content.decode()
    assert not [m for m in response.context["messages"] if "success" in m.tags]
    incident.refresh_from_db()
    assert (incident.title, incident.severity, incident.commander) == ("x", "P2", None)
    assert incident.started_at > earlier
    assert incident.events.count() == events


def test_admin_change_form_on_a_closed_incident_is_refused_and_saves_nothing(manager_client, manager):
    incident = IncidentFactory(status="closed", title="Old title")
    incident.resolved_at = incident.closed_at = timezone.now()
    incident.mitigated_at = incident.resolved_at
    incident.save()
    response = manager_client.post(
        reverse("admin:incidents_incident_change", args=[incident.pk]),
        {
            **_change_data(incident, title="New title", commander=manager.pk),
            "resolved_at_0": incident.resolved_at.strftime("%Y-%m-%d"),
            "resolved_at_1": incident.resolved_at.strftime("%H:%M:%S.%f"),
            "mitigated_at_0": incident.mitigated_at.strftime("%Y-%m-%d"),
            "mitigated_at_1": incident.mitigated_at.strftime("%H:%M:%S.%f"),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert any(f"{incident.ref} is closed; it cannot be edited." in e for e in errors), errors
    assert not [m for m in response.context["messages"] if "success" in m.tags]
    incident.refresh_from_db()
    assert (incident.title, incident.commander) == ("Old title", None)
    assert not incident.events.exists()


def test_admin_change_form_time_order_message_uses_labels_and_zone(manager_client, manager):
    incident = services.incident_declare(title="x", severity="P1", service=ServiceFactory(), actor=manager)
    too_early = incident.started_at - timedelta(hours=3)
    response = manager_client.post(
        reverse("admin:incidents_incident_change", args=[incident.pk]),
        _change_data(
            incident, detected_at_0=too_early.strftime("%Y-%m-%d"), detected_at_1=too_early.strftime("%H:%M:%S")
        ),
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    text = " ".join(form.errors["detected_at"]) + " ".join(form.non_field_errors())
    assert "Detected at (" in text
    assert "cannot be before started at (" in text
    assert " UTC)" in text
    assert "detected_at" not in text
    assert "started_at" not in text
    assert not form.non_field_errors()  # said once, on the field


def test_admin_refusal_message_uses_the_field_label():
    from django.core.exceptions import ValidationError

    from incidents.admin import _error_text

    text = _error_text(ValidationError({"duplicate_of": ["No incident INC-1."], "comms_lead": ["Not active."]}))
    assert text == "Duplicate of: No incident INC-1.; Communications lead: Not active."
