"""Property tests (hypothesis) of generation: the round-robin fairness bound and the hard rules."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall import clock, services
from oncall.models import Rotation, ScheduleIssue, Unavailability

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Sydney"]
SHAPES = st.one_of(
    st.tuples(st.just("hourly"), st.integers(min_value=1, max_value=24)),
    st.tuples(st.just("daily"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("weekly"), st.just(1)),
)
PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _build(make_rotation, members, shape, tz, start_day, horizon_days):
    unit, count = shape
    rotation = make_rotation(
        members,
        unit=unit,
        count=count,
        timezone=tz,
        handoff_weekday=0 if unit == "weekly" else None,
        horizon=timedelta(days=horizon_days),
        min_rest=timedelta(0),
        anchor_date=date(2025, 12, 1),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=start_day, hours=7)
    return rotation, now


@PROPERTY_SETTINGS
@given(
    members=st.integers(min_value=2, max_value=5),
    shape=SHAPES,
    tz=st.sampled_from(ZONES),
    start_day=st.integers(min_value=0, max_value=360),
    horizon_days=st.integers(min_value=7, max_value=40),
    window=st.tuples(st.integers(min_value=0, max_value=200), st.integers(min_value=1, max_value=200)),
)
def test_round_robin_fairness_bound(make_rotation, members, shape, tz, start_day, horizon_days, window):
    rotation, now = _build(make_rotation, members, shape, tz, start_day, horizon_days)
    services.rotation_generate(rotation=rotation, now=now)
    slots = list(rotation.shifts.order_by("period").values_list("slot", "user_id"))
    assert all(user is not None for _, user in slots)
    first, length = window
    chosen = slots[first % len(slots) :][:length]
    counts = Counter({m.user_id: 0 for m in rotation.members.all()})
    counts.update(user for _, user in chosen)
    if len(chosen) >= members:
        assert max(counts.values()) - min(counts.values()) <= 1
    else:
        assert max(counts.values()) <= 1
    nominal = clock.Shape.of(rotation).nominal
    hours = {u: c * nominal for u, c in counts.items()}
    assert max(hours.values()) - min(hours.values()) <= nominal


@PROPERTY_SETTINGS
@given(
    members=st.integers(min_value=1, max_value=4),
    shape=SHAPES,
    tz=st.sampled_from(ZONES),
    start_day=st.integers(min_value=0, max_value=360),
    max_days=st.integers(min_value=1, max_value=7),
    vacations=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=30), st.integers(1, 200)),
        max_size=4,
    ),
    strategy=st.sampled_from(list(Rotation.Strategy.values)),
)
def test_generation_respects_hard_rules(make_rotation, members, shape, tz, start_day, max_days, vacations, strategy):
    unit, count = shape
    nominal_days = {"hourly": count / 24, "daily": count, "weekly": 7}[unit]
    max_days = max(max_days, int(nominal_days + 0.999))
    rotation, now = _build(make_rotation, members, shape, tz, start_day, 28)
    Rotation.objects.filter(pk=rotation.pk).update(max_consecutive_days=max_days, strategy=strategy)
    rotation.refresh_from_db()
    people = [m.user for m in rotation.members.order_by("position")]
    for who, offset_days, length_hours in vacations:
        if who < len(people):
            start = now + timedelta(days=offset_days + 3)
            Unavailability.objects.create(
                user=people[who], period=DateTimeTZRange(start, start + timedelta(hours=length_hours))
            )
    services.rotation_generate(rotation=rotation, now=now)
    shifts = list(rotation.shifts.order_by("period"))
    tz_info = clock.zone(tz)
    # never on call while unavailable (future, unfrozen slots)
    for shift in shifts:
        if shift.user_id is not None:
            assert not Unavailability.objects.filter(user_id=shift.user_id, period__overlap=shift.period).exists()
    # never more than max consecutive local days
    run_user, run_start, run_end = None, None, None
    for shift in shifts:
        if shift.user_id is not None and shift.user_id == run_user and shift.period.lower == run_end:
            run_end = shift.period.upper
        else:
            run_user, run_start, run_end = shift.user_id, shift.period.lower, shift.period.upper
        if run_user is not None:
            assert clock.local_days(tz_info, run_start, run_end) <= max_days + 1e-9
    # every gap is explicit and has a critical issue
    gaps = {s.slot for s in shifts if s.user_id is None}
    issues = set(
        ScheduleIssue.objects.filter(rotation=rotation, kind="gap", severity="critical").values_list("slot", flat=True)
    )
    assert gaps == issues
    assert all(a.period.upper == b.period.lower for a, b in zip(shifts, shifts[1:], strict=False))


@PROPERTY_SETTINGS
@given(
    shape=SHAPES,
    tz=st.sampled_from(ZONES),
    start_day=st.integers(min_value=0, max_value=360),
    offset_minutes=st.integers(min_value=1, max_value=14 * 24 * 60),
    length_minutes=st.integers(min_value=1, max_value=5 * 24 * 60),
)
def test_override_then_cancel_restores_the_plan(make_rotation, shape, tz, start_day, offset_minutes, length_minutes):
    from tests.oncall.factories import UserFactory

    rotation, now = _build(make_rotation, 3, shape, tz, start_day, 21)
    services.rotation_generate(rotation=rotation, now=now)
    before = list(rotation.shifts.order_by("period").values_list("key", "user_id", "period"))
    stand_in = UserFactory()
    start = now + timedelta(minutes=offset_minutes)
    end = start + timedelta(minutes=length_minutes)
    override = services.override_create(rotation=rotation, user=stand_in, start=start, end=end, now=now)
    shifts = list(rotation.shifts.order_by("period"))
    assert all(a.period.upper == b.period.lower for a, b in zip(shifts, shifts[1:], strict=False))
    horizon_end = shifts[-1].period.upper
    for instant in (start, start + (end - start) / 2, end - timedelta(microseconds=1)):
        if instant < horizon_end:
            assert rotation.shifts.get(period__contains=instant).user_id == stand_in.pk
    if end < horizon_end:
        after = rotation.shifts.get(period__contains=end)
        assert after.user_id == after.planned_user_id
    services.override_cancel(override=override, now=now)
    assert list(rotation.shifts.order_by("period").values_list("key", "user_id", "period")) == before
