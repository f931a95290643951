from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection

from incidents import services
from incidents.models import Incident, IncidentEvent, IncidentRoleAssignment, StatusUpdate
from oncall.errors import DomainError
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import UserFactory

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def kinds(incident):
    return list(incident.events.order_by("at", "id").values_list("kind", flat=True))


@time_machine.travel(T0, tick=False)
def test_incident_declare_stamps_times_ref_and_channel(service, responder):
    incident = services.incident_declare(title="Checkout down", severity="P1", service=service, actor=responder)

    assert incident.ref == "INC-2026-1"
    assert incident.status == Incident.Status.TRIGGERED
    assert incident.declared_at == incident.detected_at == incident.started_at == T0
    assert incident.channel == "inc-2026-1-checkout-down"
    assert incident.created_by == responder
    assert kinds(incident) == ["declared"]


@time_machine.travel(T0, tick=False)
def test_incident_declare_refs_count_up_and_p3_gets_no_channel(service, responder):
    first = services.incident_declare(title="a", severity="P3", service=service, actor=responder)
    second = services.incident_declare(title="b", severity="P3", service=service, actor=responder)
    assert (first.ref, second.ref) == ("INC-2026-1", "INC-2026-2")
    assert first.channel == ""


@time_machine.travel(T0, tick=False)
def test_incident_declare_defaults_started_to_detected(service, responder):
    detected = T0 - timedelta(minutes=7)
    incident = services.incident_declare(
        title="x", severity="P2", service=service, actor=responder, detected_at=detected
    )
    assert incident.started_at == detected
    assert incident.declared_at == T0


def test_incident_declare_rejects_bad_input_and_writes_nothing(service, responder):
    with pytest.raises(ValidationError) as exc:
        services.incident_declare(title=" ", severity="P9", service=service, actor=responder)
    assert set(exc.value.message_dict) == {"title", "severity"}
    assert Incident.objects.count() == 0


def test_incident_full_lifecycle_stamps_each_time_once(service, responder):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P3", service=service, actor=responder)
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        services.incident_acknowledge(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        services.incident_mitigate(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        services.incident_resolve(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        services.incident_close(incident=incident, actor=responder)

    incident.refresh_from_db()
    assert incident.status == Incident.Status.CLOSED
    assert incident.acknowledged_at == T0 + timedelta(minutes=3)
    assert incident.mitigated_at == T0 + timedelta(minutes=30)
    assert incident.resolved_at == T0 + timedelta(minutes=50)
    assert incident.closed_at == T0 + timedelta(days=1)
    assert incident.commander == responder
    assert kinds(incident) == [
        "declared",
        "acknowledged",
        "role_assigned",
        "escalation_stopped",  # acknowledging stops paging
        "mitigated",
        "resolved",
        "closed",
    ]


def test_incident_acknowledge_twice_is_a_noop(service, responder):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=responder)
    first = services.incident_acknowledge(incident=incident, actor=responder)
    events = IncidentEvent.objects.count()

    second = services.incident_acknowledge(incident=incident, actor=UserFactory())

    assert second.acknowledged_at == first.acknowledged_at
    assert second.commander == responder
    assert IncidentEvent.objects.count() == events


def test_incident_resolve_sets_mitigated_when_empty(service, responder):
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    incident = services.incident_resolve(incident=incident, actor=responder)
    assert incident.mitigated_at == incident.resolved_at
    assert incident.acknowledged_at is None


def test_incident_mitigate_keeps_the_first_mitigation(service, responder):
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    first = services.incident_mitigate(incident=incident, actor=responder).mitigated_at
    services.incident_resolve(incident=incident, actor=responder)
    services.incident_reopen(incident=incident, actor=responder)
    services.incident_mitigate(incident=incident, actor=responder)
    incident.refresh_from_db()
    assert incident.mitigated_at == first


def test_incident_resolve_cancelled_is_refused(service, responder):
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    services.incident_cancel(incident=incident, actor=responder, reason="false_positive")
    events = IncidentEvent.objects.count()

    with pytest.raises(DomainError, match="cancelled"):
        services.incident_resolve(incident=incident, actor=responder)

    incident.refresh_from_db()
    assert incident.status == Incident.Status.CANCELLED
    assert incident.resolved_at is None
    assert IncidentEvent.objects.count() == events


def test_incident_close_requires_resolved(service, responder):
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    with pytest.raises(DomainError, match="only a resolved incident"):
        services.incident_close(incident=incident, actor=responder)


def test_incident_close_runs_registered_guards(service, responder, monkeypatch):
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    services.incident_resolve(incident=incident, actor=responder)

    def guard(candidate):
        raise DomainError(f"{candidate.ref} needs its postmortem published", code="postmortem_required")

    monkeypatch.setattr(services.lifecycle, "CLOSE_GUARDS", [guard])
    with pytest.raises(DomainError, match="postmortem"):
        services.incident_close(incident=incident, actor=responder)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


def test_incident_reopen_within_seven_days_clears_resolved(service, responder):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
        services.incident_resolve(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        incident = services.incident_reopen(incident=incident, actor=responder)
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.resolved_at is None
    assert kinds(incident)[-1] == "reopened"


def test_incident_reopen_after_seven_days_is_refused(service, responder):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
        services.incident_resolve(incident=incident, actor=responder)
    with (
        time_machine.travel(T0 + timedelta(days=7, minutes=1), tick=False),
        pytest.raises(DomainError, match="repeat_of"),
    ):
        services.incident_reopen(incident=incident, actor=responder)


def test_incident_cancel_as_duplicate_needs_the_original(service, responder):
    original = services.incident_declare(title="a", severity="P2", service=service, actor=responder)
    copy = services.incident_declare(title="b", severity="P2", service=service, actor=responder)
    with pytest.raises(ValidationError) as exc:
        services.incident_cancel(incident=copy, actor=responder, reason="duplicate")
    assert "duplicate_of" in exc.value.message_dict

    copy = services.incident_cancel(incident=copy, actor=responder, reason="duplicate", duplicate_of=original)
    assert copy.duplicate_of == original
    assert copy.closed_at is not None


def test_incident_correct_times_records_old_and_new(service, manager):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P1", service=service, actor=manager)
    new_start = T0 - timedelta(hours=1)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        incident = services.incident_correct_times(
            incident=incident, actor=manager, started_at=new_start, reason="logs"
        )

    assert incident.started_at == new_start
    assert incident.declared_at == T0
    event = incident.events.get(kind="times_corrected")
    assert event.data == {"started_at": {"old": T0.isoformat(), "new": new_start.isoformat()}}
    assert event.message == "logs"


def test_incident_correct_times_breaking_order_names_the_field_and_writes_nothing(service, manager):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P1", service=service, actor=manager)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False), pytest.raises(ValidationError) as exc:
        services.incident_correct_times(incident=incident, actor=manager, detected_at=T0 - timedelta(hours=2))

    assert "detected_at" in exc.value.message_dict
    incident.refresh_from_db()
    assert incident.detected_at == T0
    assert not incident.events.filter(kind="times_corrected").exists()


def test_incident_correct_times_refuses_declared_at(service, manager):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=manager)
    with pytest.raises(ValidationError) as exc:
        services.incident_correct_times(incident=incident, actor=manager, declared_at=T0)
    assert "declared_at" in exc.value.message_dict


def test_incident_assign_role_keeps_history(service, manager, responder):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=manager)
    services.incident_assign_role(incident=incident, user=responder, role="commander", actor=manager)
    services.incident_assign_role(incident=incident, user=manager, role="commander", actor=manager)

    incident.refresh_from_db()
    assert incident.commander == manager
    history = list(IncidentRoleAssignment.objects.filter(incident=incident).order_by("id"))
    assert [a.user for a in history] == [responder, manager]
    assert history[0].released_at is not None
    assert history[1].released_at is None


def test_incident_update_severity_is_an_event_and_adds_a_channel(service, manager):
    incident = services.incident_declare(title="Slow search", severity="P3", service=service, actor=manager)
    incident = services.incident_update(incident=incident, actor=manager, severity="P0")
    assert incident.channel.startswith(incident.ref.lower())
    event = incident.events.get(kind="severity_changed")
    assert event.data == {"old": "P3", "new": "P0"}


def test_status_update_create_records_event(service, responder):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=responder)
    update = services.status_update_create(incident=incident, author=responder, message=" Rolling back ")
    assert update.message == "Rolling back"
    assert incident.events.filter(kind="status_update", message="Rolling back").exists()


def test_status_update_create_rejects_empty_message(service, responder):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=responder)
    with pytest.raises(ValidationError) as exc:
        services.status_update_create(incident=incident, author=responder, message="  ")
    assert "message" in exc.value.message_dict
    assert StatusUpdate.objects.count() == 0


def test_next_ref_is_atomic_per_year(db):
    assert services.next_ref(year=2030) == "INC-2030-1"
    services.bump_ref_counter(year=2030, at_least=41)
    assert services.next_ref(year=2030) == "INC-2030-42"
    services.bump_ref_counter(year=2030, at_least=3)  # never goes back
    assert services.next_ref(year=2030) == "INC-2030-43"
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM incidents_refcounter WHERE year = 2030")
        assert cursor.fetchone() == (43,)


def test_incident_factory_rows_are_valid(db):
    assert IncidentFactory().status == "triggered"


def test_incident_correct_times_is_for_managers(service, responder):
    from django.core.exceptions import PermissionDenied

    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
    with pytest.raises(PermissionDenied):
        services.incident_correct_times(
            incident=incident, actor=responder, started_at=incident.started_at - timedelta(hours=1)
        )
    incident.refresh_from_db()
    assert not incident.events.filter(kind="times_corrected").exists()


# --- issue 13: one edit service, refusals of finished incidents, messages people can read --------------------------


def _closed(service, actor):
    """A closed incident (declared and resolved at T0; the close guard of postmortems is not the point here)."""
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P2", service=service, actor=actor)
        services.incident_resolve(incident=incident, actor=actor)
    Incident.objects.filter(pk=incident.pk).update(status="closed", closed_at=T0)
    return Incident.objects.get(pk=incident.pk)


def test_incident_update_refuses_a_finished_incident(service, responder):
    incident = _closed(service, responder)
    with pytest.raises(DomainError, match=f"{incident.ref} is closed; it cannot be edited."):
        services.incident_update(incident=incident, actor=responder, title="New", severity="P1")
    incident.refresh_from_db()
    assert (incident.title, incident.severity) == ("x", "P2")
    assert services.incident_update(incident=incident, actor=responder, title="x").title == "x"  # no change: no-op


def test_incident_edit_is_all_or_nothing(service, manager):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P2", service=service, actor=manager)
    gone = UserFactory(username="gone", is_active=False)
    with pytest.raises(ValidationError) as exc:
        services.incident_edit(incident=incident, actor=manager, title="New", severity="P1", commander=gone)
    assert list(exc.value.message_dict) == ["commander"]
    with time_machine.travel(T0 + timedelta(hours=1), tick=False), pytest.raises(ValidationError) as exc:
        services.incident_edit(
            incident=incident,
            actor=manager,
            title="New",
            severity="P1",
            commander=manager,
            times={"detected_at": T0 - timedelta(hours=2)},  # before started_at: refused inside the transaction
        )
    assert list(exc.value.message_dict) == ["detected_at"]
    incident.refresh_from_db()
    assert (incident.title, incident.severity, incident.commander) == ("x", "P2", None)
    assert kinds(incident) == ["declared"]

    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        services.incident_edit(
            incident=incident,
            actor=manager,
            title="New",
            severity="P1",
            commander=manager,
            times={"started_at": T0 - timedelta(hours=1)},
        )
    incident.refresh_from_db()
    assert (incident.title, incident.severity, incident.commander) == ("New", "P1", manager)
    assert set(kinds(incident)) == {"declared", "edited", "severity_changed", "role_assigned", "times_corrected"}


def test_incident_edit_on_a_closed_incident_corrects_times_but_refuses_roles(service, manager):
    incident = _closed(service, manager)
    with pytest.raises(DomainError, match="cannot be reassigned"):
        services.incident_edit(
            incident=incident, actor=manager, commander=manager, times={"started_at": T0 - timedelta(hours=1)}
        )
    incident.refresh_from_db()
    assert incident.started_at == T0
    services.incident_edit(incident=incident, actor=manager, title="x", times={"started_at": T0 - timedelta(hours=1)})
    incident.refresh_from_db()
    assert incident.started_at == T0 - timedelta(hours=1)


def test_check_time_order_message_uses_labels_and_formats_times_with_their_zone():
    with pytest.raises(ValidationError) as exc:
        services.check_time_order({"started_at": T0, "detected_at": T0 - timedelta(minutes=5)})
    assert exc.value.message_dict == {
        "detected_at": ["Detected at (2026-03-10 11:55 UTC) cannot be before started at (2026-03-10 12:00 UTC)."]
    }


def test_time_messages_follow_the_current_zone_in_winter_and_summer():
    from django.utils import timezone

    with timezone.override("Europe/Berlin"):
        assert services.format_time(T0) == "2026-03-10 13:00 CET"
        assert services.format_time(datetime(2026, 7, 1, 12, 0, 30, tzinfo=UTC)) == "2026-07-01 14:00:30 CEST"


@time_machine.travel(T0, tick=False)
def test_incident_declare_future_time_message(service, responder):
    with pytest.raises(ValidationError) as exc:
        services.incident_declare(
            title="x", severity="P2", service=service, actor=responder, detected_at=T0 + timedelta(hours=1)
        )
    assert exc.value.message_dict == {
        "detected_at": ["Detected at (2026-03-10 13:00 UTC) cannot be in the future (it is now 2026-03-10 12:00 UTC)."]
    }


def test_incident_reopen_refusal_formats_the_time_and_names_repeat_of(service, responder):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder)
        services.incident_resolve(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(days=8), tick=False), pytest.raises(DomainError) as exc:
        services.incident_reopen(incident=incident, actor=responder)
    assert "resolved at 2026-03-10 12:00 UTC" in exc.value.message
    assert "+00:00" not in exc.value.message
    assert "repeat_of" in exc.value.message


def test_incident_correct_times_messages_use_labels(service, manager):
    incident = services.incident_declare(title="x", severity="P1", service=service, actor=manager)
    with pytest.raises(ValidationError) as exc:
        services.incident_correct_times(incident=incident, actor=manager, declared_at=T0)
    assert exc.value.message_dict["declared_at"][0].startswith("Declared at cannot be corrected")
    with pytest.raises(ValidationError) as exc:
        services.incident_correct_times(incident=incident, actor=manager, started_at=None)
    assert exc.value.message_dict == {"started_at": ["Started at is required."]}


def test_incident_declare_and_update_repeat_of(service, responder):
    earlier = IncidentFactory(service=service, status="closed")
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=responder, repeat_of=earlier)
    assert incident.repeat_of == earlier
    assert incident.events.get(kind="declared").data["repeat_of"] == earlier.ref
    with pytest.raises(ValidationError) as exc:
        services.incident_update(incident=incident, actor=responder, repeat_of=incident)
    assert "repeat_of" in exc.value.message_dict
    incident = services.incident_update(incident=incident, actor=responder, repeat_of=None)
    assert incident.repeat_of is None
    assert incident.events.get(kind="edited").data == {"repeat_of": {"old": earlier.ref, "new": None}}


def test_incident_correct_times_refuses_clearing_the_stamp_the_status_stands_on(service, manager):
    """Found by fuzzing the API on seeded data: resolved_at cleared on a resolved incident made the next reopen
    a 500 (its 7-day window computed from nothing). The status's own stamps cannot be cleared; nothing changes."""
    incident = services.incident_declare(title="x", severity="P2", service=service, actor=manager)
    incident = services.incident_resolve(incident=incident, actor=manager)
    for name in ("resolved_at", "mitigated_at"):
        with pytest.raises(ValidationError) as exc:
            services.incident_correct_times(incident=incident, actor=manager, **{name: None})
        label = name.replace("_at", " at").capitalize()
        assert exc.value.message_dict == {name: [f"{label} cannot be cleared while the incident is resolved."]}
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert not incident.events.filter(kind=IncidentEvent.Kind.TIMES_CORRECTED).exists()
    assert services.incident_reopen(incident=incident, actor=manager).status == Incident.Status.ACKNOWLEDGED
