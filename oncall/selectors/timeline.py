"""The rotation timeline drawn in the admin: shifts of the next weeks as positioned bars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from oncall import clock
from oncall.models import Rotation, Shift

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac", "#ff9da7"]


@dataclass(frozen=True)
class Bar:
    label: str
    start: datetime
    end: datetime
    left: float  # percent of the window
    width: float
    color: str
    source: str
    is_gap: bool


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    timezone: str
    bars: list[Bar]
    days: list[tuple[float, str]]  # (left percent, label) of local midnights


def rotation_timeline(*, rotation_id: int, start: datetime, days: int = 28) -> Timeline | None:
    rotation = Rotation.objects.filter(pk=rotation_id).first()
    if rotation is None:
        return None
    end = start + timedelta(days=days)
    total = (end - start).total_seconds()
    tz = clock.zone(rotation.timezone)
    shifts = (
        Shift.objects.filter(rotation_id=rotation_id, period__overlap=DateTimeTZRange(start, end))
        .select_related("user")
        .order_by("period")
    )
    colors: dict[int, str] = {}
    bars = []
    for shift in shifts:
        lower, upper = max(shift.period.lower, start), min(shift.period.upper, end)
        if shift.user_id is not None:
            colors.setdefault(shift.user_id, PALETTE[len(colors) % len(PALETTE)])
        bars.append(
            Bar(
                label=str(shift.user) if shift.user else "GAP",
                start=shift.period.lower.astimezone(tz),
                end=shift.period.upper.astimezone(tz),
                left=round((lower - start).total_seconds() / total * 100, 3),
                width=round((upper - lower).total_seconds() / total * 100, 3),
                color=colors.get(shift.user_id, "#d62728"),
                source=shift.source,
                is_gap=shift.user_id is None,
            )
        )
    ticks = []
    local = start.astimezone(tz).date() + timedelta(days=1)
    while True:
        instant = clock.resolve(tz, datetime.combine(local, datetime.min.time()))  # noqa: DTZ001
        if instant >= end:
            break
        if local.weekday() == 0 or days <= 14:
            ticks.append((round((instant - start).total_seconds() / total * 100, 3), local.strftime("%a %d %b")))
        local += timedelta(days=1)
    return Timeline(start=start, end=end, timezone=rotation.timezone, bars=bars, days=ticks)
