"""Who is on call: database lookups of the materialised shifts (never dependent on a periodic task)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import BigIntegerField, Q, QuerySet, Value
from django.db.models.functions import Cast

from oncall.models import Rotation, Shift

NEXT_WINDOW = timedelta(days=15)  # a slot is at most 7 days: the next different holder is within two


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


def current_shifts(*, rotation_ids: list[int], at: datetime) -> dict[int, Shift]:
    """The shift containing `at` of each rotation (with its user), in one query served by the GiST index of the
    no-overlap constraint. No ordering: the model's default order would join rotations and teams."""
    if not rotation_ids:
        return {}
    rows = Shift.objects.filter(rotation_id__in=rotation_ids, period__contains=at).select_related("user").order_by()
    return {shift.rotation_id: shift for shift in rows}


def next_shifts(
    *, rotation_ids: list[int], current: dict[int, Shift], at: datetime, fallback: bool = True
) -> dict[int, Shift]:
    """Per rotation, the first shift starting after `at` whose holder differs from the current one (or a gap).

    One query returning at most one row per rotation (DISTINCT ON), within NEXT_WINDOW (a slot is at most 7
    days, so the next different holder is within two); with `fallback`, a rotation with nothing different in
    the window (a long override) asks `next_shift_after`, without a window."""
    if not rotation_ids:
        return {}
    differs = Q(rotation_id__in=[r for r in rotation_ids if r not in current or current[r].user_id is None])
    for rotation_id, shift in current.items():
        if shift.user_id is not None and rotation_id in rotation_ids:
            differs |= Q(rotation_id=rotation_id) & ~Q(user_id=shift.user_id)
    rows = (
        Shift.objects.filter(differs, period__startswith__gt=at, period__startswith__lte=at + NEXT_WINDOW)
        .select_related("user")
        .order_by("rotation_id", "period")
        .distinct("rotation_id")
    )
    found = {shift.rotation_id: shift for shift in rows}
    for rotation_id in rotation_ids if fallback else ():
        if rotation_id not in found:
            nxt = next_shift_after(rotation_id=rotation_id, at=at)
            if nxt is not None:
                found[rotation_id] = nxt
    return found


def shifts_in_range(
    *, start: datetime, end: datetime, rotation_id: int | None = None, user_id: int | None = None
) -> QuerySet:
    queryset = Shift.objects.filter(period__overlap=DateTimeTZRange(start, end))
    if rotation_id is not None:
        queryset = queryset.filter(rotation_id=rotation_id)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    return queryset.select_related("rotation__team", "user", "planned_user").order_by("period", "rotation_id")


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
    current = current_shifts(rotation_ids=ids, at=at)
    upcoming = next_shifts(rotation_ids=ids, current=current, at=at)
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


MANAGE_PERMISSION = "oncall.change_rotation"  # the Managers group: may change any schedule


def override_refusal(*, actor, rotation: Rotation, user) -> str | None:
    """Why `actor` may not give a period of `rotation` to `user`, or None when they may: managers can give any
    shift to anyone; a member of the rotation can take a shift of it for themselves (as in every paging product),
    never give one to someone else."""
    if actor is None or actor.has_perm(MANAGE_PERMISSION):
        return None
    if user is None or user.pk != actor.pk:
        return "Only managers give a shift to someone else; you can take a shift for yourself."
    if not rotation.members.filter(user_id=actor.pk).exists():
        return "You can take shifts only of rotations you are a member of."
    return None


def override_cancel_refusal(*, actor, override) -> str | None:
    """Managers cancel any override; a member cancels a shift they took for themselves."""
    if actor is None or actor.has_perm(MANAGE_PERMISSION):
        return None
    if override.user_id == actor.pk and override.created_by_id == actor.pk:
        return None
    return "Only managers cancel an override someone else made or that gives the shift to someone else."
