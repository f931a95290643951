from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from oncall import services
from oncall.clock import zone
from oncall.models import Notification, Rotation, ScheduleIssue, Shift, Unavailability
from tests.oncall.factories import RotationMemberFactory, UserFactory

DAILY = {"unit": Rotation.Unit.DAILY, "handoff_weekday": None, "timezone": "Europe/Berlin"}


def _holders(rotation):
    return [s.user.username if s.user else None for s in rotation.shifts.select_related("user").order_by("period")]


def test_rotation_generate_round_robin_fills_the_horizon_without_holes(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    result = services.rotation_generate(rotation=rotation)
    shifts = list(rotation.shifts.order_by("period"))
    assert shifts[0].period.lower <= now < shifts[0].period.upper
    assert shifts[-1].period.upper >= now + rotation.horizon
    assert all(a.period.upper == b.period.lower for a, b in zip(shifts, shifts[1:], strict=False))
    holders = _holders(rotation)
    assert holders[:6] == [holders[0], holders[1], holders[2]] * 2
    assert len(set(holders)) == 3
    assert result.gap_slots == []
    assert all(s.period.lower.astimezone(zone("Europe/Berlin")).time() == time(9) for s in shifts[1:])


def test_rotation_generate_twice_changes_nothing(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    before = list(rotation.shifts.values_list("pk", "user_id", "period", "sequence"))
    version = Rotation.objects.get(pk=rotation.pk).plan_version
    result = services.rotation_generate(rotation=rotation)
    assert list(rotation.shifts.values_list("pk", "user_id", "period", "sequence")) == before
    assert result.plan_version == version
    assert not Notification.objects.filter(payload__kind="schedule_changed").exists()


def test_rotation_generate_weekly_berlin_shift_over_spring_forward_is_167_hours(make_rotation):
    rotation = make_rotation(2, anchor_date=date(2026, 3, 2))
    services.rotation_generate(rotation=rotation, now=datetime(2026, 3, 3, tzinfo=UTC))
    shift = rotation.shifts.get(period__contains=datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert (shift.period.upper - shift.period.lower) == timedelta(hours=167)
    assert shift.period.upper.astimezone(zone("Europe/Berlin")).time() == time(9)


def test_member_added_mid_rotation_leaves_frozen_shifts_untouched(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    frozen_before = list(
        rotation.shifts.filter(slot__lte=current + 1).values_list("pk", "user_id", "period", "sequence")
    )
    newcomer = UserFactory(username="newcomer")
    services.rotation_member_add(rotation=rotation, user=newcomer)
    assert (
        list(rotation.shifts.filter(slot__lte=current + 1).values_list("pk", "user_id", "period", "sequence"))
        == frozen_before
    )
    # round robin goes on in the listed order; the newcomer, added last, comes after the last member
    assert rotation.shifts.get(slot=current + 2).user.username.endswith("m2")
    assert rotation.shifts.get(slot=current + 3).user == newcomer
    changed = Notification.objects.filter(payload__kind="schedule_changed")
    assert newcomer.pk in set(changed.values_list("user_id", flat=True))
    assert changed.count() >= 2


def test_member_removed_while_holding_the_current_shift_is_refused(make_rotation, now):
    from oncall.errors import DomainError

    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    holder = rotation.shifts.get(period__contains=now).user
    member = rotation.members.get(user=holder)
    before = list(rotation.shifts.values_list("pk", "user_id", "sequence"))
    with pytest.raises(DomainError, match="frozen shift keeps its holder"):
        services.rotation_member_remove(member=member)
    assert rotation.members.filter(user=holder).exists()
    assert list(rotation.shifts.values_list("pk", "user_id", "sequence")) == before


def test_unavailability_skips_member_who_is_owed_the_next_slot(make_rotation, now):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    target = rotation.shifts.get(slot=current + 3)
    away = target.user
    services.unavailability_create(user=away, start=target.period.lower, end=target.period.upper, kind="vacation")
    assert rotation.shifts.get(slot=current + 3).user != away
    assert rotation.shifts.get(slot=current + 4).user == away  # owed: takes the next slot they can
    assert not rotation.shifts.filter(
        user=away, period__overlap=DateTimeTZRange(target.period.lower, target.period.upper)
    ).exists()
    assert Notification.objects.filter(user=away, payload__kind="schedule_changed").exists()


def test_unavailability_over_a_frozen_shift_is_refused_and_changes_nothing(make_rotation, now):
    from oncall.errors import DomainError

    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    holder = rotation.shifts.get(period__contains=now).user
    with pytest.raises(DomainError, match="frozen shift keeps its holder"):
        services.unavailability_create(user=holder, start=now, end=now + timedelta(days=3))
    assert not Unavailability.objects.exists()


def test_nobody_available_makes_a_gap_shift_critical_issue_and_notifies_managers(make_rotation, now):
    rotation = make_rotation(2, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    target = rotation.shifts.get(slot=current + 3)
    for member in rotation.members.all():
        services.unavailability_create(user=member.user, start=target.period.lower, end=target.period.upper)
    gap = rotation.shifts.get(slot=current + 3)
    assert gap.user is None
    assert gap.source == Shift.Source.GAP
    issue = ScheduleIssue.objects.get(rotation=rotation, kind=ScheduleIssue.Kind.GAP)
    assert issue.severity == ScheduleIssue.Severity.CRITICAL
    assert issue.slot == current + 3
    manager_notes = Notification.objects.filter(payload__kind="schedule_gap")
    assert list(manager_notes.values_list("user__username", flat=True)) == [f"mgr-{rotation.team.slug}"]


def test_single_member_weekly_never_holds_more_than_seven_consecutive_days(make_rotation, now):
    rotation = make_rotation(1)
    services.rotation_generate(rotation=rotation)
    holders = _holders(rotation)
    assert None in holders
    assert all(not (a and b) for a, b in zip(holders, holders[1:], strict=False))  # never two weeks in a row
    assert ScheduleIssue.objects.filter(kind=ScheduleIssue.Kind.GAP).count() == holders.count(None)


def test_no_one_is_primary_and_secondary_at_once(make_rotation, now):
    primary = make_rotation(2, **DAILY)
    secondary = make_rotation(0, team=primary.team, layer=Rotation.Layer.SECONDARY, **DAILY)
    both = primary.members.first().user
    RotationMemberFactory(rotation=secondary, user=both, position=0)
    RotationMemberFactory(rotation=secondary, user=UserFactory(username="second"), position=1)
    services.rotation_generate(rotation=primary)
    services.rotation_generate(rotation=secondary)
    for shift in secondary.shifts.filter(user=both):
        assert not primary.shifts.filter(user=both, period__overlap=shift.period).exists()
    assert secondary.shifts.filter(user=both).exists()


def test_short_rest_is_assigned_with_a_warning(make_rotation, now):
    rotation = make_rotation(2, unit=Rotation.Unit.HOURLY, count=4, handoff_weekday=None, horizon=timedelta(days=1))
    services.rotation_generate(rotation=rotation)
    assert None not in _holders(rotation)
    warning = ScheduleIssue.objects.filter(kind=ScheduleIssue.Kind.REST).first()
    assert warning is not None
    assert warning.severity == ScheduleIssue.Severity.WARNING


def test_balanced_strategy_evens_weighted_hours(make_rotation, now):
    from oncall.clock import weighted_hours

    rotation = make_rotation(3, strategy=Rotation.Strategy.BALANCED, **DAILY)
    services.rotation_generate(rotation=rotation)
    totals: Counter = Counter()
    tz = zone(rotation.timezone)
    for shift in rotation.shifts.all():
        totals[shift.user_id] += weighted_hours(
            tz,
            shift.period.lower,
            shift.period.upper,
            weekend_weight=rotation.weekend_weight,
            holiday_weight=rotation.holiday_weight,
        )
    assert len(totals) == 3
    assert max(totals.values()) - min(totals.values()) <= 24 * 1.5


def test_generate_shifts_command_fills_every_rotation(make_rotation, now, capsys):
    first, second = make_rotation(2, **DAILY), make_rotation(2)
    call_command("generate_shifts")
    assert first.shifts.exists()
    assert second.shifts.exists()
    assert "slot(s) planned" in capsys.readouterr().out


def test_generate_shifts_task_is_idempotent(make_rotation, now):
    from oncall.tasks import generate_shifts_task

    rotation = make_rotation(2, **DAILY)
    generate_shifts_task()
    count = rotation.shifts.count()
    generate_shifts_task()
    assert rotation.shifts.count() == count


def test_rotation_in_tokyo_hands_off_at_local_nine(make_rotation, now):
    rotation = make_rotation(2, timezone="Asia/Tokyo", **{k: v for k, v in DAILY.items() if k != "timezone"})
    services.rotation_generate(rotation=rotation)
    starts = [s.period.lower for s in rotation.shifts.order_by("period")[1:5]]
    assert all(s.astimezone(UTC).time() == time(0, 0) for s in starts)


@pytest.mark.parametrize(
    "change",
    [
        {"handoff_time": time(18, 0)},
        {"unit": Rotation.Unit.WEEKLY, "handoff_weekday": 2},
        {"unit": Rotation.Unit.HOURLY, "count": 12},
    ],
)
def test_changing_the_rotation_shape_replans_only_after_the_next_shift(make_rotation, now, change):
    rotation = make_rotation(3, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now)
    nxt = rotation.shifts.get(period__startswith=current.period.upper)
    frozen = list(
        rotation.shifts.filter(period__startswith__lte=nxt.period.lower).values_list(
            "pk", "user_id", "period", "sequence"
        )
    )
    for field, value in change.items():
        setattr(rotation, field, value)
    services.rotation_save(rotation=rotation)
    assert (
        list(
            rotation.shifts.filter(period__startswith__lte=nxt.period.lower).values_list(
                "pk", "user_id", "period", "sequence"
            )
        )
        == frozen
    )
    later = list(rotation.shifts.filter(period__startswith__gte=nxt.period.upper).order_by("period"))
    assert later[0].period.lower == nxt.period.upper  # no hole, no overlap
    assert all(a.period.upper == b.period.lower for a, b in zip(later, later[1:], strict=False))
    assert later[-1].period.upper >= now + rotation.horizon


def test_balanced_ties_go_to_the_least_recently_on_call(make_rotation, now):
    from decimal import Decimal

    rotation = make_rotation(2, strategy=Rotation.Strategy.BALANCED, weekend_weight=Decimal(1), **DAILY)
    services.rotation_generate(rotation=rotation)
    holders = _holders(rotation)
    assert holders[:6] == [holders[0], holders[1]] * 3  # equal hours after each pair: the one who waited longer


@pytest.mark.parametrize(
    ("tz_name", "anchor", "dst_instant", "real_hours"),
    [
        ("America/New_York", date(2026, 2, 2), datetime(2026, 3, 8, 12, tzinfo=UTC), 167),
        ("America/New_York", date(2026, 10, 5), datetime(2026, 11, 1, 12, tzinfo=UTC), 169),
        ("Europe/Berlin", date(2026, 10, 5), datetime(2026, 10, 25, 12, tzinfo=UTC), 169),
    ],
)
def test_generated_weekly_shift_over_dst_keeps_local_handoffs(make_rotation, tz_name, anchor, dst_instant, real_hours):
    rotation = make_rotation(2, anchor_date=anchor, timezone=tz_name)
    services.rotation_generate(rotation=rotation, now=datetime.combine(anchor, time(12), tzinfo=UTC))
    shift = rotation.shifts.get(period__contains=dst_instant)
    assert shift.period.upper - shift.period.lower == timedelta(hours=real_hours)
    tz = zone(tz_name)
    assert shift.period.lower.astimezone(tz).time() == time(9)
    assert shift.period.upper.astimezone(tz).time() == time(9)


def _next_holders(rotation, after_slot, count):
    shifts = rotation.shifts.filter(slot__gt=after_slot).select_related("user").order_by("period")[:count]
    return [s.user.username[-2:] for s in shifts]


def test_member_added_takes_their_place_in_the_listed_order(make_rotation, now):
    """[A, B, C, D] with C holding the next unfrozen slot; adding E gives C, D, E, A, B (ONCALL.md)."""
    rotation = make_rotation(4, **DAILY)
    services.rotation_generate(rotation=rotation, now=now - timedelta(days=9))  # everyone has been on call
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    a, b, c, d = _next_holders(rotation, current - 1, 4)
    assert sorted([a, b, c, d]) == ["m0", "m1", "m2", "m3"]
    services.rotation_member_add(rotation=rotation, user=UserFactory(username=f"r{rotation.pk}m4"))
    assert _next_holders(rotation, current - 1, 7) == [a, b, c, d, "m4", a, b][:2] + _listed_from(c, 5)


def _listed_from(first: str, count: int) -> list[str]:
    cycle = ["m0", "m1", "m2", "m3", "m4"]
    i = cycle.index(first)
    return [cycle[(i + k) % len(cycle)] for k in range(count)]


def test_member_placed_elsewhere_in_the_order_takes_that_place(make_rotation, now):
    rotation = make_rotation(4, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now).slot
    newcomer = UserFactory(username=f"r{rotation.pk}m4")
    services.rotation_member_add(rotation=rotation, user=newcomer)
    order = [m.user_id for m in rotation.members.order_by("position")]
    services.rotation_members_reorder(rotation=rotation, user_ids=[order[0], newcomer.pk, *order[1:4]])
    assert _next_holders(rotation, current - 1, 7) == ["m0", "m1", "m2", "m3", "m0", "m4", "m1"]


def test_round_robin_plan_does_not_change_as_time_passes(make_rotation, now):
    rotation = make_rotation(4, **DAILY)
    services.rotation_generate(rotation=rotation)
    current = rotation.shifts.get(period__contains=now)
    away = rotation.shifts.get(slot=current.slot + 3)
    services.unavailability_create(user=away.user, start=away.period.lower, end=away.period.upper)
    services.rotation_member_add(rotation=rotation, user=UserFactory(username=f"r{rotation.pk}m4"))
    plan = list(rotation.shifts.order_by("period").values_list("slot", "user_id"))
    for days in range(1, 8):
        result = services.rotation_generate(rotation=rotation, now=now + timedelta(days=days))
        assert result.changed_user_ids == set(), days
        assert list(rotation.shifts.order_by("period").values_list("slot", "user_id"))[: len(plan)] == plan
