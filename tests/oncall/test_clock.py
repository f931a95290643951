import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest

from oncall.clock import Shape, hours, local_days, night_hours, resolve, weighted_hours, zone

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def test_resolve_nonexistent_time_is_first_instant_after_the_gap():
    # Berlin jumps from 02:00 to 03:00 on 2026-03-29: 02:30 does not exist.
    resolved = resolve(BERLIN, datetime(2026, 3, 29, 2, 30))
    assert resolved == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert resolved.astimezone(BERLIN).time() == time(3, 0)
    # plain zoneinfo does not do this: it reads 02:30 with the old offset and lands on 03:30
    naive_reading = datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN).astimezone(UTC)
    assert naive_reading.astimezone(BERLIN).time() == time(3, 30)


def test_resolve_ambiguous_time_is_first_occurrence():
    # Berlin repeats 02:00-03:00 on 2026-10-25: the first 02:30 is CEST (UTC+2).
    assert resolve(BERLIN, datetime(2026, 10, 25, 2, 30)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert resolve(NEW_YORK, datetime(2026, 11, 1, 1, 30)) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_resolve_nonexistent_new_york():
    assert resolve(NEW_YORK, datetime(2026, 3, 8, 2, 15)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz_name", "spring_monday", "fall_monday"),
    [
        ("Europe/Berlin", date(2026, 3, 23), date(2026, 10, 19)),
        ("America/New_York", date(2026, 3, 2), date(2026, 10, 26)),
    ],
)
def test_weekly_shifts_across_dst_are_167_and_169_hours_with_handoffs_at_local_nine(
    tz_name, spring_monday, fall_monday
):
    shape = Shape(tz_name, "weekly", 1, time(9, 0), date(2026, 1, 5), handoff_weekday=0)
    tz = zone(tz_name)
    spring = shape.slot_at(datetime.combine(spring_monday, time(12), tzinfo=tz))
    fall = shape.slot_at(datetime.combine(fall_monday, time(12), tzinfo=tz))
    assert hours(*shape.slot(spring)) == 167
    assert hours(*shape.slot(fall)) == 169
    assert local_days(tz, *shape.slot(fall)) == 7
    for n in range(spring - 2, fall + 3):
        start = shape.boundary(n).astimezone(tz)
        assert (start.weekday(), start.time()) == (0, time(9, 0))


def test_daily_0230_berlin_handoff_on_spring_forward_day_is_at_0300():
    shape = Shape("Europe/Berlin", "daily", 1, time(2, 30), date(2026, 3, 1))
    n = (date(2026, 3, 29) - date(2026, 3, 1)).days
    assert shape.boundary(n).astimezone(BERLIN) == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert hours(*shape.slot(n - 1)) == 23.5  # 02:30 CET on the 28th to 03:00 CEST on the 29th
    assert hours(*shape.slot(n)) == 23.5  # 03:00 CEST to 02:30 CEST on the 30th
    assert shape.boundary(n + 1).astimezone(BERLIN).time() == time(2, 30)


def test_daily_0230_berlin_fall_back_day_has_one_boundary_at_the_first_0230():
    shape = Shape("Europe/Berlin", "daily", 1, time(2, 30), date(2026, 10, 1))
    n = (date(2026, 10, 25) - date(2026, 10, 1)).days
    assert shape.boundary(n) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert hours(*shape.slot(n)) == 25


def test_rotation_in_a_zone_other_than_the_servers():
    # the server runs in UTC; a Tokyo rotation still hands off at 09:00 Tokyo time
    shape = Shape("Asia/Tokyo", "daily", 1, time(9, 0), date(2026, 6, 1))
    assert shape.boundary(0) == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert shape.slot_at(datetime(2026, 6, 1, 23, 59, tzinfo=UTC)) == 0
    assert shape.slot_at(datetime(2026, 6, 2, 0, 0, tzinfo=UTC)) == 1


def test_hourly_rotation_skips_the_missing_hour():
    shape = Shape("Europe/Berlin", "hourly", 1, time(0, 0), date(2026, 3, 29))
    assert [hours(*shape.slot(n)) for n in range(5)] == [1, 1, 0, 1, 1]


def test_slot_at_matches_boundaries():
    shape = Shape("America/New_York", "daily", 2, time(17, 0), date(2026, 1, 1))
    for n in range(-3, 200, 7):
        start, end = shape.slot(n)
        assert shape.slot_at(start) == n
        assert shape.slot_at(end - timedelta(seconds=1)) == n


def test_weekly_anchor_moves_forward_to_the_handoff_weekday():
    shape = Shape("UTC", "weekly", 1, time(9), date(2026, 6, 3), handoff_weekday=0)  # a Wednesday
    assert shape.boundary(0) == datetime(2026, 6, 8, 9, tzinfo=UTC)


def test_weighted_hours_weekend_and_holiday_count_once_at_the_larger_weight():
    from decimal import Decimal

    start = datetime(2026, 6, 5, 22, 0, tzinfo=UTC)  # Saturday 00:00 Berlin
    end = start + timedelta(days=2)
    plain = weighted_hours(BERLIN, start, end, weekend_weight=Decimal("1.5"), holiday_weight=Decimal("2"))
    assert plain == 48 * 1.5
    holiday = weighted_hours(
        BERLIN,
        start,
        end,
        weekend_weight=Decimal("1.5"),
        holiday_weight=Decimal("2"),
        holidays=frozenset({date(2026, 6, 6)}),
    )
    assert holiday == 24 * 2 + 24 * 1.5


def test_night_hours_are_local():
    start = datetime(2026, 6, 1, 0, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    assert night_hours(BERLIN, start, start + timedelta(days=1)) == 8
