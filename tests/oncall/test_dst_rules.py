"""A clock change alone never makes a slot a gap, longer than planned, or change its nominal hours.

Handoff times inside a spring-forward gap (02:30 on the day Berlin jumps from 02:00 to 03:00) are moved to the
clock change, so the slot before reads 7.02 local days on the clock and the one after 6.98; the consecutive-day
rule and the fairness report count the slot as planned (7 days, 168 nominal hours). Fall-back days have the same
checks. The sweep covers zones whose clocks change at 00:00 (Santiago, Tehran until 2022), by 30 minutes
(Lord Howe), in both hemispheres, over many years."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall import clock, selectors, services
from oncall.models import Rotation, ScheduleIssue, Shift
from tests.oncall.factories import UserFactory

BERLIN = clock.zone("Europe/Berlin")
SWEEP_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",
    "Pacific/Auckland",
    "Asia/Tehran",
    "Europe/London",
    "Australia/Lord_Howe",
]
UNITS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


def _offset(tz, day: date, at: time = time(0)) -> timedelta:
    return datetime.combine(day, at, tzinfo=tz).utcoffset()


def _missing(tz, local: datetime) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local


def _repeated(tz, local: datetime) -> bool:
    return local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()


def transitions(tz_name: str, years: range) -> list[tuple[date, str, time]]:
    """(local date, "spring" | "fall", a wall-clock time inside the gap or the repeated hour) per clock change."""
    tz = clock.zone(tz_name)
    found = []
    day = date(years.start, 1, 1)
    while day.year < years.stop:
        nxt = day + timedelta(days=1)
        if _offset(tz, day) != _offset(tz, nxt, time(3)) or _offset(tz, day) != _offset(tz, day, time(23, 59)):
            for minute in range(0, 24 * 60, 15):
                local = datetime.combine(day, time(minute // 60, minute % 60))  # noqa: DTZ001 - wall clock
                if _missing(tz, local):
                    found.append((day, "spring", local.time()))
                    break
                if _repeated(tz, local):
                    found.append((day, "fall", local.time()))
                    break
        day = nxt
    return found


def _shape(tz_name: str, unit: str, day: date, at: time) -> clock.Shape:
    return clock.Shape(
        timezone=tz_name,
        unit=unit,
        count=1,
        handoff_time=at,
        anchor_date=day - timedelta(weeks=2),
        handoff_weekday=day.weekday() if unit == "weekly" else None,
    )


# --- the rule itself, without a database ----------------------------------------------------------------


def test_a_week_whose_handoff_falls_into_the_spring_forward_gap_is_seven_planned_days():
    shape = _shape("Europe/Berlin", "weekly", date(2026, 3, 29), time(2, 30))
    before = shape.slot(shape.slot_at(datetime(2026, 3, 25, tzinfo=UTC)))
    after = shape.slot(shape.slot_at(datetime(2026, 4, 1, tzinfo=UTC)))
    assert before[1] == after[0] == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST, the clock change
    assert clock.local_days(BERLIN, *before) > 7.01  # what the clock reads: the cause of the old gap
    assert clock.planned_local_days(shape, *before) == 7
    assert clock.planned_local_days(shape, *after) == 7


def test_a_week_whose_handoff_falls_into_the_repeated_fall_back_hour_is_seven_planned_days():
    shape = _shape("Europe/Berlin", "weekly", date(2026, 10, 25), time(2, 30))
    before = shape.slot(shape.slot_at(datetime(2026, 10, 21, tzinfo=UTC)))
    after = shape.slot(shape.slot_at(datetime(2026, 10, 28, tzinfo=UTC)))
    assert clock.hours(*after) == 169
    assert clock.planned_local_days(shape, *before) == 7
    assert clock.planned_local_days(shape, *after) == 7


@pytest.mark.parametrize("tz_name", SWEEP_ZONES)
@pytest.mark.parametrize("unit", list(UNITS))
def test_every_clock_change_of_many_years_keeps_each_slot_its_planned_length(tz_name, unit):
    years = range(2000, 2022) if tz_name == "Asia/Tehran" else range(2000, 2040)
    changes = transitions(tz_name, years)
    assert {kind for _, kind, _ in changes} == {"spring", "fall"}
    for day, _kind, at in changes:
        shape = _shape(tz_name, unit, day, at)
        local_noon = datetime.combine(day, time(12), tzinfo=shape.tz)
        middle = shape.slot_at(local_noon)
        for n in range(middle - 30, middle + 30):
            start, end = shape.slot(n)
            if start == end:
                continue  # an hourly slot swallowed by the gap: not stored
            assert clock.planned_local_days(shape, start, end) == UNITS[unit] / timedelta(days=1), (day, n)


@settings(max_examples=200, deadline=None)
@given(
    tz_name=st.sampled_from(SWEEP_ZONES),
    year=st.integers(min_value=2000, max_value=2037),
    unit=st.sampled_from(list(UNITS)),
    minutes=st.integers(min_value=0, max_value=59),
    spring=st.booleans(),
)
def test_property_handoffs_inside_a_clock_change_keep_the_planned_length(tz_name, year, unit, minutes, spring):
    if tz_name == "Asia/Tehran":
        year = min(year, 2021)
    changes = [c for c in transitions(tz_name, range(year, year + 1)) if (c[1] == "spring") == spring]
    for day, _kind, at in changes:
        at = (datetime.combine(day, at) + timedelta(minutes=minutes)).time()  # noqa: DTZ001 - wall clock
        shape = _shape(tz_name, unit, day, at)
        n = shape.slot_at(datetime.combine(day, time(12), tzinfo=shape.tz))
        total = 0.0
        for k in range(n - 3, n + 3):
            start, end = shape.slot(k)
            if start < end:
                assert clock.planned_local_days(shape, start, end) == UNITS[unit] / timedelta(days=1)
            total += clock.planned_local_days(shape, start, end)
        assert abs(total - clock.planned_local_days(shape, shape.boundary(n - 3), shape.boundary(n + 3))) < 1e-9


# --- generation, overrides and the fairness report ----------------------------------------------------------


def _rotation(make_rotation, tz_name, unit, day, at, members=3, **fields):
    return make_rotation(
        members,
        unit=unit,
        timezone=tz_name,
        handoff_time=at,
        handoff_weekday=day.weekday() if unit == "weekly" else None,
        anchor_date=day - timedelta(weeks=4),
        min_rest=timedelta(0),
        horizon=timedelta(weeks=4),
        **fields,
    )


def _assert_no_gap_and_planned_nominal_hours(rotation, now):
    shifts = list(rotation.shifts.order_by("period"))
    assert shifts
    assert [s.slot for s in shifts if s.source == Shift.Source.GAP] == []
    assert not ScheduleIssue.objects.filter(rotation=rotation, kind=ScheduleIssue.Kind.GAP).exists()
    assert all(a.period.upper == b.period.lower for a, b in zip(shifts, shifts[1:], strict=False))
    report = selectors.fairness_report(rotation=rotation, start=shifts[0].period.lower, end=shifts[-1].period.upper)
    nominal = clock.Shape.of(rotation).nominal / timedelta(hours=1)
    for row in report.members:
        assert row.nominal_hours == pytest.approx(row.slots * nominal), row


@pytest.mark.parametrize(
    ("unit", "max_days"),
    [("weekly", 7), ("daily", 1)],
)
@pytest.mark.parametrize("kind", ["spring", "fall"])
def test_generation_never_leaves_a_gap_at_a_berlin_clock_change(make_rotation, unit, max_days, kind):
    day = date(2026, 3, 29) if kind == "spring" else date(2026, 10, 25)
    rotation = _rotation(make_rotation, "Europe/Berlin", unit, day, time(2, 30), max_consecutive_days=max_days)
    now = datetime.combine(day - timedelta(days=10), time(12), tzinfo=UTC)
    services.rotation_generate(rotation=rotation, now=now)
    _assert_no_gap_and_planned_nominal_hours(rotation, now)


@pytest.mark.parametrize("tz_name", SWEEP_ZONES)
@pytest.mark.parametrize("kind", ["spring", "fall"])
@pytest.mark.parametrize(("unit", "max_days"), [("weekly", 7), ("daily", 1), ("hourly", 1)])
def test_generation_sweep_no_gap_and_planned_nominal_hours(make_rotation, tz_name, kind, unit, max_days):
    year = 2019 if tz_name == "Asia/Tehran" else 2027
    day, _, at = next(c for c in transitions(tz_name, range(year, year + 1)) if c[1] == kind)
    fields = {"horizon": timedelta(days=4)} if unit == "hourly" else {}
    rotation = _rotation(make_rotation, tz_name, unit, day, at, max_consecutive_days=max_days)
    if fields:
        Rotation.objects.filter(pk=rotation.pk).update(**fields)
        rotation.refresh_from_db()
    now = datetime.combine(day - timedelta(days=2 if unit == "hourly" else 10), time(12), tzinfo=UTC)
    services.rotation_generate(rotation=rotation, now=now)
    _assert_no_gap_and_planned_nominal_hours(rotation, now)


@pytest.mark.parametrize("kind", ["spring", "fall"])
def test_an_override_covering_the_week_of_a_clock_change_is_accepted(make_rotation, kind):
    day = date(2026, 3, 29) if kind == "spring" else date(2026, 10, 25)
    rotation = _rotation(make_rotation, "Europe/Berlin", "weekly", day, time(2, 30))
    now = datetime.combine(day - timedelta(days=17), time(12), tzinfo=UTC)
    services.rotation_generate(rotation=rotation, now=now)
    week = rotation.shifts.get(period__contains=datetime.combine(day, time(0), tzinfo=BERLIN))
    stand_in = UserFactory(username=f"stand-in-{kind}")
    services.override_create(rotation=rotation, user=stand_in, start=week.period.lower, end=week.period.upper, now=now)
    assert rotation.shifts.get(period__contains=week.period.lower).user == stand_in
    assert rotation.shifts.get(period__contains=week.period.upper - timedelta(minutes=1)).user == stand_in


@pytest.mark.parametrize("kind", ["spring", "fall"])
def test_fairness_nominal_hours_of_daily_slots_around_a_clock_change_are_24(make_rotation, kind):
    day = date(2026, 3, 29) if kind == "spring" else date(2026, 10, 25)
    rotation = _rotation(make_rotation, "Europe/Berlin", "daily", day, time(2, 30), members=1)
    now = datetime.combine(day - timedelta(days=3), time(12), tzinfo=UTC)
    Rotation.objects.filter(pk=rotation.pk).update(max_consecutive_days=7, horizon=timedelta(days=6))
    services.rotation_generate(rotation=rotation, now=now)
    for shift in rotation.shifts.filter(period__overlap=DateTimeTZRange(now, now + timedelta(days=6))):
        report = selectors.fairness_report(rotation=rotation, start=shift.period.lower, end=shift.period.upper)
        (row,) = report.members
        assert row.nominal_hours == 24, shift.period
