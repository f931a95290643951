"""The fairness report of a rotation over a window (people use it for on-call pay)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from oncall import clock
from oncall.models import Holiday, Notification, Rotation, Shift

METRICS = ["real_hours", "nominal_hours", "weighted_hours", "slots", "night_hours", "pages"]


@dataclass
class MemberFairness:
    user_id: int
    username: str
    real_hours: float = 0.0
    nominal_hours: float = 0.0
    weighted_hours: float = 0.0
    slots: int = 0
    night_hours: float = 0.0
    pages: int = 0


@dataclass
class FairnessReport:
    rotation_id: int
    start: datetime
    end: datetime
    members: list[MemberFairness]
    spread: dict[str, float] = field(default_factory=dict)


def fairness_report(*, rotation: Rotation, start: datetime, end: datetime) -> FairnessReport:
    """Per member: real hours (UTC), nominal hours (the planned length in local wall-clock time: a 169-hour
    fall-back week is 168, a daily slot whose 02:30 handoff fell into a spring-forward gap is 24),
    weighted hours (weekend/holiday weights), slots started in the window, night hours (22:00–06:00 local),
    pages received while on call. Effective shifts count (overrides included), clipped to the window.
    The spread is max − min over current members. Four queries."""
    shape = clock.Shape.of(rotation)
    tz = shape.tz
    window = DateTimeTZRange(start, end)
    shifts = list(
        Shift.objects.filter(rotation=rotation, period__overlap=window, user__isnull=False).order_by("period")
    )
    member_ids = list(rotation.members.order_by("position", "id").values_list("user_id", flat=True))
    user_ids = list(dict.fromkeys(member_ids + [s.user_id for s in shifts]))
    users = get_user_model().objects.in_bulk(user_ids)
    holidays = (
        frozenset(Holiday.objects.filter(calendar_id=rotation.holiday_calendar_id).values_list("date", flat=True))
        if rotation.holiday_calendar_id
        else frozenset()
    )
    pages = list(
        Notification.objects.filter(
            user_id__in=user_ids, payload__kind="page", created_at__gte=start, created_at__lt=end
        ).values_list("user_id", "created_at")
    )
    rows = {uid: MemberFairness(user_id=uid, username=users[uid].get_username()) for uid in user_ids}
    slots_seen: set[tuple[int, int]] = set()
    for shift in shifts:
        lower, upper = max(shift.period.lower, start), min(shift.period.upper, end)
        row = rows[shift.user_id]
        row.real_hours += clock.hours(lower, upper)
        row.nominal_hours += clock.planned_local_days(shape, lower, upper) * 24
        row.weighted_hours += clock.weighted_hours(
            tz,
            lower,
            upper,
            weekend_weight=rotation.weekend_weight,
            holiday_weight=rotation.holiday_weight,
            holidays=holidays,
        )
        row.night_hours += clock.night_hours(tz, lower, upper)
        if start <= shift.period.lower < end and (shift.user_id, shift.slot) not in slots_seen:
            slots_seen.add((shift.user_id, shift.slot))
            row.slots += 1
        row.pages += sum(1 for uid, at in pages if uid == shift.user_id and lower <= at < upper)
    members = list(rows.values())
    for row in members:
        for metric in ("real_hours", "nominal_hours", "weighted_hours", "night_hours"):
            setattr(row, metric, round(getattr(row, metric), 2))
    current = [rows[uid] for uid in member_ids] or members
    spread = (
        {m: round(max(getattr(r, m) for r in current) - min(getattr(r, m) for r in current), 2) for m in METRICS}
        if current
        else {}
    )
    return FairnessReport(rotation_id=rotation.pk, start=start, end=end, members=members, spread=spread)


def fairness_csv(report: FairnessReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", *METRICS])
    for row in report.members:
        writer.writerow([row.username, *(getattr(row, m) for m in METRICS)])
    writer.writerow(["spread", *(report.spread.get(m, "") for m in METRICS)])
    return out.getvalue()
