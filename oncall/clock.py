"""Pure time arithmetic of rotations: wall-clock boundaries in the rotation's zone, resolved to UTC.

No database access here; selectors and services build on these functions.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache


@lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def resolve(tz: zoneinfo.ZoneInfo, local: datetime) -> datetime:
    """The UTC instant of the naive local wall-clock time `local` in `tz`.

    Ambiguous (fall-back) → the first occurrence. Nonexistent (spring-forward gap) → the first instant after
    the gap, i.e. the transition itself (02:30 on the day Berlin jumps from 02:00 to 03:00 → 03:00 local).
    zoneinfo alone would give 03:30 for that case (it shifts by the offset before the gap).
    """
    local = local.replace(tzinfo=None)
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == local:
        return first
    # Nonexistent: the transition lies between the two candidate readings; bisect to the second.
    low = local.replace(tzinfo=tz, fold=1).astimezone(UTC)  # offset after the gap: an instant before it
    high = first  # offset before the gap: an instant after it
    low, high = min(low, high), max(low, high)
    after_offset = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(tz).utcoffset() == after_offset:
            high = mid
        else:
            low = mid
    return high


@dataclass(frozen=True)
class Shape:
    """What boundary computation needs of a rotation (so it is testable without a database)."""

    timezone: str
    unit: str
    count: int
    handoff_time: time
    anchor_date: date
    handoff_weekday: int | None = None

    @classmethod
    def of(cls, rotation) -> Shape:
        return cls(
            timezone=rotation.timezone,
            unit=rotation.unit,
            count=rotation.count,
            handoff_time=rotation.handoff_time,
            anchor_date=rotation.anchor_date,
            handoff_weekday=rotation.handoff_weekday,
        )

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zone(self.timezone)

    @property
    def nominal(self) -> timedelta:
        return {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}[
            self.unit
        ] * self.count

    def anchor(self) -> datetime:
        start = self.anchor_date
        if self.unit == "weekly" and self.handoff_weekday is not None:
            start += timedelta(days=(self.handoff_weekday - start.weekday()) % 7)
        return datetime.combine(start, self.handoff_time)  # noqa: DTZ001 - naive local wall-clock on purpose

    def local_boundary(self, n: int) -> datetime:
        """The naive local wall-clock time of boundary n (calendar days, or wall-clock hours)."""
        return self.anchor() + n * self.nominal

    def boundary(self, n: int) -> datetime:
        return resolve(self.tz, self.local_boundary(n))

    def slot(self, n: int) -> tuple[datetime, datetime]:
        return self.boundary(n), self.boundary(n + 1)

    def slot_at(self, instant: datetime) -> int:
        """Index of the slot containing `instant` (negative before slot 0)."""
        local = instant.astimezone(self.tz).replace(tzinfo=None)
        n = (local - self.anchor()) // self.nominal
        while self.boundary(n) > instant:
            n -= 1
        while self.boundary(n + 1) <= instant:
            n += 1
        return n


def planned_local(shape: Shape, instant: datetime, *, end: bool = False) -> datetime:
    """The naive local wall-clock reading of `instant` as the rotation planned it.

    A boundary whose handoff time does not exist (moved to the clock change by `resolve`) reads as its planned
    time: the 02:30 handoff that happens at 03:00 on a spring-forward day reads 02:30. As the `end` of an interval
    an instant that is several boundaries at once (an hourly slot swallowed by the gap) reads as the first of
    them, as a start as the last. Any other instant reads as the local clock shows it."""
    n = shape.slot_at(instant)
    if shape.boundary(n) != instant:
        return instant.astimezone(shape.tz).replace(tzinfo=None)
    if end:
        while shape.boundary(n - 1) == instant:
            n -= 1
    return shape.local_boundary(n)


def planned_local_days(shape: Shape, start: datetime, end: datetime) -> float:
    """Length of [start, end) in local calendar days as planned: a weekly slot is 7 days whether it is 167, 168
    or 169 real hours, and whether or not its handoff time fell into a spring-forward gap (then `local_days`
    would read 7.02 for the week before and 6.98 for the week after)."""
    delta = planned_local(shape, end, end=True) - planned_local(shape, start)
    return delta / timedelta(days=1)


def local_days(tz: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> float:
    """Length of [start, end) in local calendar days (wall-clock): 169 real hours over fall-back = 7 days."""
    delta = end.astimezone(tz).replace(tzinfo=None) - start.astimezone(tz).replace(tzinfo=None)
    return delta / timedelta(days=1)


def local_pieces(
    tz: zoneinfo.ZoneInfo, start: datetime, end: datetime, cuts: tuple[time, ...] = ()
) -> Iterator[tuple[datetime, datetime, datetime]]:
    """Split [start, end) at local midnights and at the local `cuts` times; yields (from, to, local start)."""
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz).replace(tzinfo=None)
        candidates = [datetime.combine(local.date() + timedelta(days=1), time(0))]  # noqa: DTZ001
        candidates += [datetime.combine(local.date(), cut) for cut in cuts if cut > local.time()]  # noqa: DTZ001
        nxt = min(resolve(tz, candidate) for candidate in candidates)
        if nxt <= cursor:  # a cut inside a gap resolved backwards; step over it
            nxt = cursor + timedelta(minutes=1)
        piece_end = min(nxt, end)
        yield cursor, piece_end, local
        cursor = piece_end


def hours(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(hours=1)


def weighted_hours(
    tz: zoneinfo.ZoneInfo,
    start: datetime,
    end: datetime,
    *,
    weekend_weight: Decimal,
    holiday_weight: Decimal,
    holidays: frozenset[date] = frozenset(),
) -> float:
    """Real hours, each weighted by its local date: weekend, holiday, or both (counted once, larger weight)."""
    total = 0.0
    for piece_start, piece_end, local in local_pieces(tz, start, end):
        weight = Decimal(1)
        if local.weekday() >= 5:
            weight = max(weight, weekend_weight)
        if local.date() in holidays:
            weight = max(weight, holiday_weight)
        total += hours(piece_start, piece_end) * float(weight)
    return total


NIGHT_START = time(22, 0)
NIGHT_END = time(6, 0)


def night_hours(tz: zoneinfo.ZoneInfo, start: datetime, end: datetime) -> float:
    """Real hours between 22:00 and 06:00 local."""
    total = 0.0
    for piece_start, piece_end, local in local_pieces(tz, start, end, cuts=(NIGHT_END, NIGHT_START)):
        if local.time() >= NIGHT_START or local.time() < NIGHT_END:
            total += hours(piece_start, piece_end)
    return total
