from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from oncall import providers, services
from oncall.clock import zone
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Handoff, Notification, Rotation
from oncall.tasks import process_handoffs
from tests.concurrency import at_once
from tests.oncall.conftest import NOW

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def _boundary_after(rotation, instant):
    return rotation.shifts.filter(period__startswith__gt=instant).order_by("period").first().period.lower


def test_process_handoffs_records_a_boundary_once_and_notifies_both_people(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    services.handoffs_process()  # records the boundary that started the current shift
    Notification.objects.all().delete()
    boundary = _boundary_after(rotation, now)
    with time_machine.travel(boundary + timedelta(seconds=30), tick=False):
        process_handoffs()
        process_handoffs()
    handoff = Handoff.objects.get(rotation=rotation, boundary_at__gt=now)
    assert handoff.boundary_at == boundary
    assert handoff.status == Handoff.Status.NOTIFIED
    assert handoff.kind == Handoff.Kind.HANDOFF
    notes = Notification.objects.filter(payload__kind="handoff")
    assert sorted(notes.values_list("payload__role", flat=True)) == ["incoming", "outgoing"]
    assert set(notes.values_list("user_id", flat=True)) == {handoff.incoming_id, handoff.outgoing_id}


def test_after_downtime_every_boundary_is_recorded_only_the_latest_notified_and_marked_late(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    services.handoffs_process()
    Notification.objects.all().delete()
    later = now + timedelta(days=3, hours=2)
    services.handoffs_process(now=later)
    new = list(Handoff.objects.filter(boundary_at__gt=now).order_by("boundary_at"))
    assert len(new) == 3
    assert [h.status for h in new] == [Handoff.Status.MISSED, Handoff.Status.MISSED, Handoff.Status.LATE]
    assert new[-1].lateness == later - new[-1].boundary_at
    handoff_ids = set(Notification.objects.filter(payload__kind="handoff").values_list("payload__handoff", flat=True))
    assert handoff_ids == {new[-1].pk}


def test_handoff_to_the_same_person_is_recorded_not_notified(make_rotation, now):
    rotation = make_rotation(1, **DAILY)
    services.rotation_generate(rotation=rotation)
    services.handoffs_process()
    Notification.objects.all().delete()
    boundary = _boundary_after(rotation, now)
    services.handoffs_process(now=boundary)
    handoff = Handoff.objects.get(boundary_at=boundary)
    assert handoff.kind == Handoff.Kind.SAME_PERSON
    assert handoff.status == Handoff.Status.RECORDED
    assert not Notification.objects.filter(payload__kind="handoff").exists()


def test_fall_back_day_has_exactly_one_handoff_record(make_rotation):
    rotation = make_rotation(2, anchor_date=date(2026, 10, 1), handoff_time=time(2, 30), **DAILY)
    services.rotation_generate(rotation=rotation, now=datetime(2026, 10, 24, 12, tzinfo=UTC))
    berlin = zone("Europe/Berlin")
    day_start = datetime(2026, 10, 25, 0, 0, tzinfo=berlin)
    instant = day_start
    services.handoffs_process(now=instant)
    while instant < datetime(2026, 10, 26, 0, 0, tzinfo=berlin):
        instant += timedelta(minutes=10)
        services.handoffs_process(now=instant)
    on_that_day = Handoff.objects.filter(boundary_at__gte=day_start, boundary_at__lt=day_start + timedelta(hours=25))
    assert on_that_day.count() == 1
    assert on_that_day.get().boundary_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30


def test_reminders_24h_and_1h_each_sent_once(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    nxt = rotation.shifts.filter(period__startswith__gt=now).order_by("period").first()
    start = nxt.period.lower
    for instant in (
        start - timedelta(hours=23),
        start - timedelta(hours=22),
        start - timedelta(minutes=50),
        start - timedelta(minutes=10),
    ):
        services.reminders_send(now=instant)
    reminders = Notification.objects.filter(payload__kind="shift_reminder", payload__shift=nxt.pk)
    assert sorted(reminders.values_list("payload__lead_seconds", flat=True)) == [3600, 86400]
    assert set(reminders.values_list("user_id", flat=True)) == {nxt.user_id}


def test_handoff_message_lists_open_incidents_and_the_escalation_chain(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    services.handoffs_process()
    policy = EscalationPolicy.objects.create(team=rotation.team, name="Default")
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=10)
    EscalationTarget.objects.create(step=step, kind=EscalationTarget.Kind.ROTATION_CURRENT, rotation=rotation)

    def provider(team_id):
        return (
            [providers.OpenIncident(ref="INC-7", title="Checkout slow", severity="P2")]
            if team_id == rotation.team_id
            else []
        )

    providers.register_open_incidents_provider(provider)
    try:
        boundary = _boundary_after(rotation, now)
        services.handoffs_process(now=boundary)
    finally:
        providers.unregister_open_incidents_provider(provider)
    handoff = Handoff.objects.get(boundary_at=boundary)
    body = Notification.objects.get(payload__handoff=handoff.pk, payload__role="incoming").body
    assert "INC-7 [P2] Checkout slow" in body
    assert "Default" in body
    incoming = handoff.incoming
    assert f"step 1 (+0 min): {incoming}" in body


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_make_one_record_and_one_set_of_notifications(make_rotation, monkeypatch):
    from oncall.queueing import publisher
    from oncall.tasks import deliver_notification_task

    queued = []  # the broker is the outside world here: record what would be sent to it after commit
    monkeypatch.setattr(deliver_notification_task, "apply_async", lambda args=None, *a, **kw: queued.append(args[0]))
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation, now=NOW)
    services.handoffs_process(now=NOW)
    Notification.objects.all().delete()
    boundary = _boundary_after(rotation, NOW)
    _, errors = at_once(2, lambda: services.handoffs_process(now=boundary + timedelta(seconds=5)))
    assert errors == []
    publisher.flush()  # messages are published by a background thread after commit
    assert Handoff.objects.filter(rotation=rotation, boundary_at=boundary).count() == 1
    handoff_notes = Notification.objects.filter(payload__kind="handoff")
    assert handoff_notes.count() == 2
    assert sorted(n for n in queued if n in set(handoff_notes.values_list("pk", flat=True))) == sorted(
        handoff_notes.values_list("pk", flat=True)
    )


def test_handoff_also_tells_the_team_channel(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    rotation.team.chat_channel = "C0TEAM"
    rotation.team.save()
    services.rotation_generate(rotation=rotation)
    services.handoffs_process()
    boundary = _boundary_after(rotation, now)
    services.handoffs_process(now=boundary)
    handoff = Handoff.objects.get(boundary_at=boundary)
    team_note = Notification.objects.get(payload__handoff=handoff.pk, payload__role="team")
    assert team_note.channel == Notification.Channel.SLACK
    assert team_note.address == "C0TEAM"
