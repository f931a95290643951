"""Who is on call: database lookups of the materialised shifts (never dependent on a periodic task)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import BigIntegerField, QuerySet, Value
from django.db.models.functions import Cast

from oncall.models import Rotation, Shift


def shift_at(*, rotation_id: int, at: datetime) -> Shift | None:
    """The shift of the rotation containing instant `at` (a gap shift has no user)."""
    # The id is cast to bigint so that the GiST index of the no-overlap exclusion constraint serves
    # (rotation_id, period @> at) together: btree_gist has no int4 = int8 operator, and a plain int literal
    # is int4, so PostgreSQL otherwise scans `period @> at` over every rotation (bench/RESULTS.md, on-call).
    # No ORDER BY: shifts of one rotation never overlap, so at most one row matches.
    # (`.first()` would add ORDER BY id, which can tempt the planner into walking the primary key.)
    rows = Shift.objects.filter(rotation_id=Cast(Value(rotation_id), BigIntegerField()), period__contains=at)
    return next(iter(rows.select_related("user").order_by()[:1]), None)


def holder_at(*, rotation_id: int, at: datetime):
    shift = shift_at(rotation_id=rotation_id, at=at)
    return shift.user if shift is not None else None


def next_shift_after(*, rotation_id: int, at: datetime) -> Shift | None:
    """The first shift starting after the one containing `at` with a different holder (or a gap)."""
    current = shift_at(rotation_id=rotation_id, at=at)
    queryset = Shift.objects.filter(rotation_id=rotation_id, period__startswith__gt=at).select_related("user")
    if current is not None:
        queryset = queryset.exclude(user_id=current.user_id) if current.user_id else queryset
    return queryset.order_by("period").first()


def shifts_in_range(
    *, start: datetime, end: datetime, rotation_id: int | None = None, user_id: int | None = None
) -> QuerySet:
    queryset = Shift.objects.filter(period__overlap=DateTimeTZRange(start, end))
    if rotation_id is not None:
        queryset = queryset.filter(rotation_id=rotation_id)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    return queryset.select_related("rotation__team", "user", "planned_user").order_by("period", "rotation_id")


NEXT_WINDOW = timedelta(days=15)


@dataclass(frozen=True)
class OnCallEntry:
    rotation: Rotation
    team_name: str
    layer: str
    holder: object | None
    until: datetime | None
    is_gap: bool
    next_holder: object | None
    next_from: datetime | None


def oncall_now(*, at: datetime, team_id: int | None = None) -> list[OnCallEntry]:
    """Per active rotation (team, layer): holder at `at`, until when, and the next holder. Three queries."""
    rotations = Rotation.objects.filter(is_active=True).select_related("team").order_by("team__name", "layer", "name")
    if team_id is not None:
        rotations = rotations.filter(team_id=team_id)
    rotations = list(rotations)
    ids = [r.pk for r in rotations]
    current = {
        s.rotation_id: s for s in Shift.objects.filter(rotation_id__in=ids, period__contains=at).select_related("user")
    }
    upcoming: dict[int, Shift] = {}
    # the next different holder is within two slots (a slot is at most 7 days): read a bounded window, not
    # every future shift of every rotation (bench/RESULTS.md: 3 s for 100 rotations with a year of shifts)
    later = (
        Shift.objects.filter(rotation_id__in=ids, period__startswith__gt=at, period__startswith__lte=at + NEXT_WINDOW)
        .select_related("user")
        .order_by("rotation_id", "period")
    )
    # the next *different* holder; rows are few per rotation within the horizon, read them in one pass
    for shift in later.only(
        "rotation_id", "user_id", "period", "user__username", "user__first_name", "user__last_name", "user__email"
    ):
        if shift.rotation_id in upcoming:
            continue
        now_shift = current.get(shift.rotation_id)
        if now_shift is not None and now_shift.user_id is not None and shift.user_id == now_shift.user_id:
            continue
        upcoming[shift.rotation_id] = shift
    for rotation_id in ids:
        if rotation_id not in upcoming:  # nothing different within the window (long overrides): ask without one
            nxt = next_shift_after(rotation_id=rotation_id, at=at)
            if nxt is not None:
                upcoming[rotation_id] = nxt
    entries = []
    for rotation in rotations:
        shift = current.get(rotation.pk)
        nxt = upcoming.get(rotation.pk)
        entries.append(
            OnCallEntry(
                rotation=rotation,
                team_name=rotation.team.name,
                layer=rotation.layer,
                holder=shift.user if shift else None,
                until=(nxt.period.lower if nxt else (shift.period.upper if shift else None)),
                is_gap=shift is None or shift.user_id is None,
                next_holder=nxt.user if nxt else None,
                next_from=nxt.period.lower if nxt else None,
            )
        )
    return entries
