from datetime import UTC, datetime, timedelta

import time_machine

from incidents import services, tasks
from oncall.models import Notification

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def reminders():
    return Notification.objects.filter(dedupe_key__startswith="status-reminder:")


def test_remind_overdue_status_updates_once_per_overdue_period(
    service, manager, responder, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="Site down", severity="P0", service=service, actor=manager)
        services.incident_assign_role(incident=incident, user=responder, role="comms_lead", actor=manager)
        services.incident_assign_role(incident=incident, user=manager, role="commander", actor=manager)

    with time_machine.travel(T0 + timedelta(minutes=29), tick=False):
        assert tasks.remind_overdue_status_updates() == 0
    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        with django_capture_on_commit_callbacks() as callbacks:
            assert tasks.remind_overdue_status_updates() == 2  # commander and comms lead
        assert len(callbacks) == 2  # one delivery task each, after commit
    for minutes in (32, 40, 59):
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            assert tasks.remind_overdue_status_updates() == 0
    assert reminders().count() == 2
    assert set(reminders().values_list("user__username", flat=True)) == {"manager", "responder"}

    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):  # second overdue period
        assert tasks.remind_overdue_status_updates() == 2
        assert tasks.remind_overdue_status_updates() == 0
    assert reminders().count() == 4
    assert incident.events.filter(kind="reminder_sent").count() == 2


def test_remind_overdue_status_updates_restarts_after_an_update(service, manager):
    with time_machine.travel(T0, tick=False):
        incident = services.incident_declare(title="Site down", severity="P0", service=service, actor=manager)
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        services.status_update_create(incident=incident, author=manager, message="Rolling back")
    with time_machine.travel(T0 + timedelta(minutes=45), tick=False):
        assert tasks.remind_overdue_status_updates() == 0  # 25 min since the update
    with time_machine.travel(T0 + timedelta(minutes=51), tick=False):
        assert tasks.remind_overdue_status_updates() == 1  # the declarer, no roles assigned
    assert reminders().get().user == manager


def test_remind_overdue_status_updates_skips_p3_and_resolved(service, manager):
    with time_machine.travel(T0, tick=False):
        services.incident_declare(title="Typo", severity="P3", service=service, actor=manager)
        resolved = services.incident_declare(title="Gone", severity="P0", service=service, actor=manager)
        services.incident_resolve(incident=resolved, actor=manager)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        assert tasks.remind_overdue_status_updates() == 0
    assert not reminders().exists()
