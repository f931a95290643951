"""Writes of the schedule: generation, members, overrides, swaps, unavailability.

Every function is one transaction. Hard-rule breaches raise DomainError naming the rule, after which the
transaction rolls back and nothing is changed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Max
from django.utils import timezone

from oncall import clock
from oncall.errors import DomainError
from oncall.models import (
    CalendarFeed,
    Holiday,
    Override,
    Rotation,
    RotationMember,
    ScheduleIssue,
    Shift,
    Swap,
    Unavailability,
)
from oncall.selectors.notifications import team_managers
from oncall.services.notifications import notification_enqueue

EPSILON_DAYS = 1e-9


@dataclass(frozen=True)
class Piece:
    key: str
    slot: int
    start: datetime
    end: datetime
    user_id: int | None
    planned_user_id: int | None
    source: str
    override_id: int | None = None


@dataclass
class GenerationResult:
    rotation_id: int
    planned_slots: int = 0
    gap_slots: list[int] = field(default_factory=list)
    rest_warnings: list[tuple[int, int]] = field(default_factory=list)
    changed_user_ids: set[int] = field(default_factory=set)
    plan_version: int = 0


def _fmt(rotation: Rotation, instant: datetime) -> str:
    return instant.astimezone(clock.zone(rotation.timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _row_sig(row: Shift) -> tuple:
    return (row.slot, row.period.lower, row.period.upper, row.user_id, row.planned_user_id, row.source, row.override_id)


def _piece_sig(piece: Piece) -> tuple:
    return (piece.slot, piece.start, piece.end, piece.user_id, piece.planned_user_id, piece.source, piece.override_id)


def _pieces_for_slot(
    *, slot: int, start: datetime, end: datetime, plan_user_id: int | None, plan_source: str, overrides: list[Override]
) -> list[Piece]:
    """The effective pieces of one slot: the plan, cut where active overrides cover it."""
    if plan_user_id is None:
        plan_source = Shift.Source.GAP
    pieces: list[Piece] = []
    prefix = f"t{int(start.timestamp())}"  # the slot's start: stable while the slot is, unique in the rotation
    cursor, index = start, 0
    for override in sorted(overrides, key=lambda o: o.period.lower):
        o_start, o_end = max(override.period.lower, start), min(override.period.upper, end)
        if o_start >= o_end:
            continue
        if o_start > cursor:
            pieces.append(Piece(f"{prefix}p{index}", slot, cursor, o_start, plan_user_id, plan_user_id, plan_source))
            index += 1
        pieces.append(
            Piece(
                f"s{slot}o{override.pk}",
                slot,
                o_start,
                o_end,
                override.user_id,
                plan_user_id,
                Shift.Source.OVERRIDE,
                override.pk,
            )
        )
        cursor = o_end
    if cursor < end:
        pieces.append(Piece(f"{prefix}p{index}", slot, cursor, end, plan_user_id, plan_user_id, plan_source))
    return pieces


def _apply(*, rotation: Rotation, desired: list[Piece], existing: list[Shift], now: datetime) -> set[int]:
    """Make the rows `existing` (all rows of the slots being rewritten) equal to `desired`.

    Unchanged rows stay as they are; changed rows are replaced by a row with the same key (so the same iCal
    UID) and a SEQUENCE equal to the new plan version. Returns the users whose future shifts changed."""
    existing_by_key = {row.key: row for row in existing}
    desired_by_key = {piece.key: piece for piece in desired}
    delete = [
        row
        for key, row in existing_by_key.items()
        if key not in desired_by_key or _row_sig(row) != _piece_sig(desired_by_key[key])
    ]
    create = [
        piece
        for key, piece in desired_by_key.items()
        if key not in existing_by_key or _row_sig(existing_by_key[key]) != _piece_sig(piece)
    ]
    if not delete and not create:
        return set()
    rotation.plan_version += 1
    rotation.save(update_fields=["plan_version"])
    Shift.objects.filter(pk__in=[row.pk for row in delete]).delete()
    Shift.objects.bulk_create(
        [
            Shift(
                rotation=rotation,
                team_id=rotation.team_id,
                layer=rotation.layer,
                slot=piece.slot,
                key=piece.key,
                user_id=piece.user_id,
                planned_user_id=piece.planned_user_id,
                period=DateTimeTZRange(piece.start, piece.end),
                source=piece.source,
                override_id=piece.override_id,
                sequence=rotation.plan_version,
            )
            for piece in create
        ]
    )
    replanned_slots = {row.slot for row in existing}
    changed = {row.user_id for row in delete if row.period.upper > now}
    changed |= {p.user_id for p in create if p.slot in replanned_slots and p.end > now}
    changed.discard(None)
    return changed


def _notify_schedule_changed(*, rotation: Rotation, user_ids: set[int], now: datetime) -> None:
    users = get_user_model().objects.in_bulk(user_ids)
    for user_id in sorted(user_ids):
        upcoming = Shift.objects.filter(rotation=rotation, user_id=user_id, period__endswith__gt=now).order_by(
            "period"
        )[:10]
        lines = [f"- {_fmt(rotation, s.period.lower)} → {_fmt(rotation, s.period.upper)}" for s in upcoming]
        notification_enqueue(
            dedupe_key=f"oncall:schedule-changed:{rotation.pk}:{rotation.plan_version}:{user_id}",
            user=users[user_id],
            subject=f"Your on-call schedule changed: {rotation}",
            body="Your upcoming shifts in this rotation are now:\n" + ("\n".join(lines) or "- none"),
            payload={"kind": "schedule_changed", "rotation": rotation.pk},
        )


def _lock(rotation: Rotation) -> Rotation:
    return Rotation.objects.select_for_update().select_related("team").get(pk=rotation.pk)


def _ranges_by_user(queryset) -> dict[int, list[tuple[datetime, datetime]]]:
    out: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for user_id, period in queryset.values_list("user_id", "period"):
        out[user_id].append((period.lower, period.upper))
    return out


def _overlaps(ranges: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(s < end and start < e for s, e in ranges)


def frozen_until(*, rotation: Rotation, now: datetime) -> datetime | None:
    """The end of what is frozen: the current slot and the next one, as stored (overrides included).

    Decided from the stored rows and times, not slot numbers, so a change of the rotation's shape (which
    renumbers slots) still leaves the current and next shift alone. None when nothing is stored ahead."""
    shifts = rotation.shifts.order_by("period")
    current = shifts.filter(period__contains=now).first()
    if current is not None:
        following = shifts.filter(period__startswith__gte=current.period.upper).exclude(slot=current.slot).first()
        anchor = current.period.lower
    else:
        following = shifts.filter(period__startswith__gt=now).first()
        anchor = now
    slots = [current.slot] if current is not None else []
    if following is not None:
        slots.append(following.slot)
    if not slots:
        return None
    return shifts.filter(slot__in=slots, period__startswith__gte=anchor).aggregate(end=Max("period__endswith"))["end"]


def rotation_generate(*, rotation: Rotation, now: datetime | None = None) -> GenerationResult:
    """Materialise the rotation's shifts up to its horizon.

    The past, the current and the next slot are frozen (kept as they are once they exist); later slots are
    planned again from the members, their unavailability, the other layer and the history, and written only
    where they differ. Slots nobody can take become gap shifts with a critical issue, managers notified."""
    now = now or timezone.now()
    with transaction.atomic():
        rotation = _lock(rotation)
        result = GenerationResult(rotation_id=rotation.pk)
        if not rotation.is_active:
            return result
        shape = clock.Shape.of(rotation)
        tz = shape.tz
        freeze_end = frozen_until(rotation=rotation, now=now)
        window_start = now - rotation.fairness_horizon
        rows = list(rotation.shifts.filter(period__endswith__gt=window_start).order_by("period"))
        if freeze_end is None:
            kept = [r for r in rows if r.period.lower <= now]
            first_slot = max(shape.slot_at(now), 0)
            plan_from = shape.boundary(first_slot)
        else:
            kept = [r for r in rows if r.period.lower < freeze_end]
            first_slot = shape.slot_at(freeze_end)
            plan_from = freeze_end
        replan_rows = [r for r in rows if r not in kept]
        pinned_by_start = {r.period.lower: r.planned_user_id for r in replan_rows if r.source == Shift.Source.SWAP}
        last = shape.slot_at(now + rotation.horizon)

        members = list(rotation.members.order_by("position", "id"))
        member_ids = [m.user_id for m in members]
        plan_end = shape.boundary(last + 1)
        span = DateTimeTZRange(window_start, plan_end)
        unavailable = _ranges_by_user(Unavailability.objects.filter(user_id__in=member_ids, period__overlap=span))
        other_layer = _ranges_by_user(
            Shift.objects.filter(team_id=rotation.team_id, user_id__in=member_ids, period__overlap=span).exclude(
                layer=rotation.layer
            )
        )
        overrides = list(
            rotation.overrides.filter(cancelled_at__isnull=True, period__overlap=DateTimeTZRange(now, plan_end))
        )
        holidays = (
            frozenset(Holiday.objects.filter(calendar_id=rotation.holiday_calendar_id).values_list("date", flat=True))
            if rotation.holiday_calendar_id
            else frozenset()
        )

        def weigh(start: datetime, end: datetime) -> float:
            return clock.weighted_hours(
                tz, start, end, weekend_weight=rotation.weekend_weight, holiday_weight=rotation.holiday_weight,
                holidays=holidays,
            )  # fmt: skip

        # History: the plan of every kept slot (chronological), and effective weighted hours in the window.
        plan: list[tuple[datetime, datetime, int | None]] = []
        plan_slots: list[int] = []
        weighted: dict[int, float] = defaultdict(float)
        for row in kept:
            if row.user_id is not None:
                weighted[row.user_id] += weigh(max(row.period.lower, window_start), row.period.upper)
            if plan and plan_slots[-1] == row.slot and plan[-1][1] == row.period.lower:
                plan[-1] = (plan[-1][0], row.period.upper, plan[-1][2])  # the next piece of the same slot
            else:
                plan.append((row.period.lower, row.period.upper, row.planned_user_id))
                plan_slots.append(row.slot)
        last_seen: dict[int, int] = {}
        last_end: dict[int, datetime] = {}
        for index, (_, end, planned) in enumerate(plan):
            if planned is not None:
                last_seen[planned], last_end[planned] = index, end

        def eligible(member: RotationMember, start: datetime, end: datetime) -> bool:
            if member.active_from and member.active_from > start:
                return False
            if member.active_until and member.active_until < end:
                return False
            if _overlaps(unavailable.get(member.user_id, []), start, end):
                return False
            if _overlaps(other_layer.get(member.user_id, []), start, end):
                return False
            run_start = start
            for p_start, p_end, p_user in reversed(plan):
                if p_user != member.user_id or p_end < run_start:
                    break
                run_start = p_start
            return clock.local_days(tz, run_start, end) <= rotation.max_consecutive_days + EPSILON_DAYS

        def short_rest(member: RotationMember, start: datetime) -> bool:
            previous = last_end.get(member.user_id)
            return previous is not None and previous < start and start - previous < rotation.min_rest

        desired: list[Piece] = []
        gap_periods: dict[int, tuple[datetime, datetime]] = {}
        rest_periods: dict[tuple[int, int], tuple[datetime, datetime]] = {}
        for n in range(first_slot, last + 1):
            start, end = shape.slot(n)
            start = max(start, plan_from)
            if start >= end:
                continue  # before what is frozen, or an hourly slot swallowed by a spring-forward gap
            order = list(enumerate(members))
            if rotation.strategy == Rotation.Strategy.BALANCED:
                floor = now - timedelta(days=36500)
                order.sort(
                    key=lambda im: (round(weighted[im[1].user_id], 6), last_end.get(im[1].user_id, floor), im[0])
                )
            else:
                order.sort(key=lambda im: (last_seen.get(im[1].user_id, -(10**9)), im[0]))
            candidates = [m for _, m in order if eligible(m, start, end)]
            source = Shift.Source.GENERATED
            pinned_user = pinned_by_start.get(start)
            chosen = next((m for m in candidates if pinned_user is not None and m.user_id == pinned_user), None)
            if chosen is not None:
                source = Shift.Source.SWAP
            else:
                chosen = candidates[0] if candidates else None
                if chosen is not None and short_rest(chosen, start):  # soft rule: assigned anyway, with a warning
                    result.rest_warnings.append((n, chosen.user_id))
                    rest_periods[(n, chosen.user_id)] = (start, end)
            user_id = chosen.user_id if chosen else None
            plan.append((start, end, user_id))
            if user_id is None:
                result.gap_slots.append(n)
                gap_periods[n] = (start, end)
            else:
                last_seen[user_id], last_end[user_id] = len(plan) - 1, end
                weighted[user_id] += weigh(start, end)
            desired += _pieces_for_slot(
                slot=n, start=start, end=end, plan_user_id=user_id, plan_source=source, overrides=overrides
            )
            result.planned_slots += 1

        changed = _apply(rotation=rotation, desired=desired, existing=replan_rows, now=now)
        result.changed_user_ids = changed
        result.plan_version = rotation.plan_version
        if changed:
            _notify_schedule_changed(rotation=rotation, user_ids=changed, now=now)
        _record_issues(rotation=rotation, gaps=gap_periods, rests=rest_periods, replanned_from=plan_from, now=now)
    return result


def _record_issues(
    *,
    rotation: Rotation,
    gaps: dict[int, tuple[datetime, datetime]],
    rests: dict[tuple[int, int], tuple[datetime, datetime]],
    replanned_from: datetime,
    now: datetime,
) -> None:
    """Open a critical issue per new gap (managers notified), a warning per short rest; resolve the open
    issues of re-planned slots that no longer apply."""
    open_issues = ScheduleIssue.objects.filter(
        rotation=rotation, resolved_at__isnull=True, period__startswith__gte=replanned_from
    )
    gap_starts = {start for start, _ in gaps.values()}
    rest_keys = {(start, user_id) for (_, user_id), (start, _) in rests.items()}
    existing_gaps: set[datetime] = set()
    existing_rests: set[tuple[datetime, int | None]] = set()
    for issue in open_issues.filter(kind__in=[ScheduleIssue.Kind.GAP, ScheduleIssue.Kind.REST]):
        key = issue.period.lower
        still = key in gap_starts if issue.kind == ScheduleIssue.Kind.GAP else (key, issue.user_id) in rest_keys
        if still:
            (
                existing_gaps.add(key)
                if issue.kind == ScheduleIssue.Kind.GAP
                else existing_rests.add((key, issue.user_id))
            )
        else:
            issue.resolved_at = now
            issue.save(update_fields=["resolved_at"])
    managers = list(team_managers(team_id=rotation.team_id)) if gaps else []
    for n, (start, end) in sorted(gaps.items()):
        if start in existing_gaps:
            continue
        message = (
            f"Nobody can take {rotation} from {_fmt(rotation, start)} to {_fmt(rotation, end)} under the hard rules."
        )
        ScheduleIssue.objects.create(
            rotation=rotation,
            slot=n,
            period=DateTimeTZRange(start, end),
            severity=ScheduleIssue.Severity.CRITICAL,
            kind=ScheduleIssue.Kind.GAP,
            message=message,
        )
        for membership in managers:
            notification_enqueue(
                dedupe_key=f"oncall:gap:{rotation.pk}:{int(start.timestamp())}:{membership.user_id}",
                user=membership.user,
                subject=f"On-call gap in {rotation}",
                body=message + "\nAdd an override or change the rotation.",
                payload={"kind": "schedule_gap", "rotation": rotation.pk, "slot": n},
            )
    for (n, user_id), (start, end) in sorted(rests.items()):
        if (start, user_id) in existing_rests:
            continue
        ScheduleIssue.objects.create(
            rotation=rotation,
            user_id=user_id,
            slot=n,
            period=DateTimeTZRange(start, end),
            severity=ScheduleIssue.Severity.WARNING,
            kind=ScheduleIssue.Kind.REST,
            message=f"Less than {rotation.min_rest} rest before the shift starting {_fmt(rotation, start)}.",
        )


# --- explicit changes: the plan of some slots is rewritten, then hard rules are checked ---------------------


def _rematerialise(
    *, rotation: Rotation, slots: set[int], plan_changes: dict[int, tuple[int | None, str]] | None = None, now: datetime
) -> set[int]:
    """Recompute the pieces of `slots` from their plan (optionally changed) and the active overrides."""
    plan_changes = plan_changes or {}
    rows = list(rotation.shifts.filter(slot__in=slots))
    by_slot: dict[int, list[Shift]] = defaultdict(list)
    for row in rows:
        by_slot[row.slot].append(row)
    desired: list[Piece] = []
    overrides = list(rotation.overrides.filter(cancelled_at__isnull=True))
    for n, slot_rows in by_slot.items():
        start = min(r.period.lower for r in slot_rows)
        end = max(r.period.upper for r in slot_rows)
        planned = slot_rows[0].planned_user_id
        plan_sources = {r.source for r in slot_rows if r.source != Shift.Source.OVERRIDE}
        source = plan_sources.pop() if plan_sources else Shift.Source.GENERATED
        planned, source = plan_changes.get(n, (planned, source))
        relevant = [o for o in overrides if o.period.lower < end and start < o.period.upper]
        desired += _pieces_for_slot(
            slot=n, start=start, end=end, plan_user_id=planned, plan_source=source, overrides=relevant
        )
    return _apply(rotation=rotation, desired=desired, existing=rows, now=now)


def _slots_overlapping(rotation: Rotation, start: datetime, end: datetime) -> set[int]:
    return set(rotation.shifts.filter(period__overlap=DateTimeTZRange(start, end)).values_list("slot", flat=True))


def _require_available(*, user: AbstractBaseUser, start: datetime, end: datetime) -> None:
    clash = Unavailability.objects.filter(user=user, period__overlap=DateTimeTZRange(start, end)).first()
    if clash is not None:
        raise DomainError(
            f"Rule 'never on call while unavailable': {user} is unavailable ({clash.get_kind_display()}) "
            f"from {clash.period.lower:%Y-%m-%d %H:%M} UTC.",
            code="unavailable",
            field="user",
        )


def _require_single_layer(*, rotation: Rotation, user: AbstractBaseUser, start: datetime, end: datetime) -> None:
    clash = (
        Shift.objects.filter(team_id=rotation.team_id, user=user, period__overlap=DateTimeTZRange(start, end))
        .exclude(layer=rotation.layer)
        .exists()
    )
    if clash:
        raise DomainError(
            f"Rule 'never primary and secondary at once': {user} is on the other layer of {rotation.team} then.",
            code="dual_role",
            field="user",
        )


def _require_consecutive_days(*, rotation: Rotation, user_id: int, start: datetime, end: datetime) -> None:
    """After a change: the run of contiguous shifts of `user_id` touching [start, end) is within the limit."""
    tz = clock.zone(rotation.timezone)
    limit = rotation.max_consecutive_days
    rows = list(
        rotation.shifts.filter(
            user_id=user_id,
            period__overlap=DateTimeTZRange(start - timedelta(days=limit + 1), end + timedelta(days=limit + 1)),
        ).order_by("period")
    )
    runs: list[list[datetime]] = []
    for row in rows:
        if runs and runs[-1][1] >= row.period.lower:
            runs[-1][1] = max(runs[-1][1], row.period.upper)
        else:
            runs.append([row.period.lower, row.period.upper])
    for run_start, run_end in runs:
        if run_start < end and start < run_end and clock.local_days(tz, run_start, run_end) > limit + EPSILON_DAYS:
            raise DomainError(
                f"Rule 'at most {limit} consecutive days': the change would keep the user on call "
                f"from {run_start:%Y-%m-%d %H:%M} to {run_end:%Y-%m-%d %H:%M} UTC.",
                code="consecutive_days",
            )


def override_create(
    *,
    rotation: Rotation,
    user: AbstractBaseUser,
    start: datetime,
    end: datetime,
    reason: str = "",
    created_by: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> Override:
    """Give [start, end) of the rotation to `user`; it may cross handoffs. Refused if it starts in the past,
    overlaps another override, or breaks a hard rule."""
    now = now or timezone.now()
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError({"start": "Give times with a time zone."})
    if end <= start:
        raise ValidationError({"end": "An override must end after it starts."})
    if start < now - timedelta(seconds=59):
        raise DomainError(
            "Rule 'no overrides in the past': an override cannot start in the past.",
            code="override_in_past",
            field="start",
        )
    with transaction.atomic():
        rotation = _lock(rotation)
        if rotation.overrides.filter(cancelled_at__isnull=True, period__overlap=DateTimeTZRange(start, end)).exists():
            raise DomainError(
                "Rule 'one override at a time': this override overlaps another one; cancel that first.",
                code="override_overlap",
                field="start",
            )
        _require_available(user=user, start=start, end=end)
        _require_single_layer(rotation=rotation, user=user, start=start, end=end)
        override = Override.objects.create(
            rotation=rotation, user=user, period=DateTimeTZRange(start, end), reason=reason, created_by=created_by
        )
        changed = _rematerialise(rotation=rotation, slots=_slots_overlapping(rotation, start, end), now=now)
        _require_consecutive_days(rotation=rotation, user_id=user.pk, start=start, end=end)
        if changed:
            _notify_schedule_changed(rotation=rotation, user_ids=changed, now=now)
    return override


def override_cancel(*, override: Override, now: datetime | None = None) -> Override:
    """Cancel an override: the plan comes back. One that already started ends now instead (history stays)."""
    now = now or timezone.now()
    with transaction.atomic():
        rotation = _lock(override.rotation)
        override = Override.objects.select_for_update().get(pk=override.pk)
        if override.cancelled_at is not None or override.period.upper <= now:
            return override
        start, end = override.period.lower, override.period.upper
        if start < now:
            override.period = DateTimeTZRange(start, now)
        else:
            override.cancelled_at = now
        override.save(update_fields=["period", "cancelled_at"])
        changed = _rematerialise(rotation=rotation, slots=_slots_overlapping(rotation, start, end), now=now)
        if changed:
            _notify_schedule_changed(rotation=rotation, user_ids=changed, now=now)
    return override


def _slot_snapshot(rotation: Rotation, slots: list[int]) -> dict[str, list]:
    rows = rotation.shifts.filter(slot__in=slots).values("slot").annotate(seq=Max("sequence"))
    planned = dict(rotation.shifts.filter(slot__in=slots).values_list("slot", "planned_user_id"))
    seqs = {r["slot"]: r["seq"] for r in rows}
    return {str(n): [planned.get(n), seqs.get(n)] for n in slots}


def _require_future_slot(rotation: Rotation, slot: int, now: datetime, field_name: str) -> None:
    start = rotation.shifts.filter(slot=slot).order_by("period").values_list("period", flat=True).first()
    if start is None or start.lower <= now:
        raise DomainError(
            f"Rule 'swaps exchange future slots': slot {slot} has started or does not exist.",
            code="slot_not_future",
            field=field_name,
        )


def swap_request(
    *,
    rotation: Rotation,
    requester: AbstractBaseUser,
    counterparty: AbstractBaseUser,
    requester_slot: int,
    counterparty_slot: int,
    now: datetime | None = None,
) -> Swap:
    now = now or timezone.now()
    if requester.pk == counterparty.pk:
        raise ValidationError({"counterparty": "A swap needs two people."})
    with transaction.atomic():
        rotation = _lock(rotation)
        _require_future_slot(rotation, requester_slot, now, "requester_slot")
        _require_future_slot(rotation, counterparty_slot, now, "counterparty_slot")
        snapshot = _slot_snapshot(rotation, [requester_slot, counterparty_slot])
        if snapshot[str(requester_slot)][0] != requester.pk:
            raise ValidationError({"requester_slot": "That slot is not planned for the requester."})
        if snapshot[str(counterparty_slot)][0] != counterparty.pk:
            raise ValidationError({"counterparty_slot": "That slot is not planned for the counterparty."})
        swap = Swap.objects.create(
            rotation=rotation,
            requester=requester,
            counterparty=counterparty,
            requester_slot=requester_slot,
            counterparty_slot=counterparty_slot,
            plan_snapshot=snapshot,
        )
        notification_enqueue(
            dedupe_key=f"oncall:swap-requested:{swap.pk}",
            user=counterparty,
            subject=f"{requester} asks to swap on-call slots with you ({rotation})",
            body="Accept or decline the swap in Firebreak.",
            payload={"kind": "swap_requested", "swap": swap.pk},
        )
    return swap


def swap_accept(*, swap: Swap, user: AbstractBaseUser, now: datetime | None = None) -> Swap:
    """The counterparty agrees: the two slots change hands, unless the plan changed since (stale)."""
    now = now or timezone.now()
    with transaction.atomic():
        rotation = _lock(swap.rotation)
        swap = Swap.objects.select_for_update().get(pk=swap.pk)
        if swap.status == Swap.Status.ACCEPTED:
            return swap
        if swap.status != Swap.Status.PENDING:
            raise DomainError(f"This swap is {swap.get_status_display().lower()}.", code="swap_closed")
        if user.pk != swap.counterparty_id:
            raise DomainError("Only the counterparty can accept a swap.", code="not_counterparty")
        slots = [swap.requester_slot, swap.counterparty_slot]
        if _slot_snapshot(rotation, slots) != swap.plan_snapshot:
            raise DomainError(
                "Rule 'no stale swaps': the plan of these slots changed since the swap was requested.",
                code="stale_swap",
            )
        _require_future_slot(rotation, swap.requester_slot, now, "requester_slot")
        _require_future_slot(rotation, swap.counterparty_slot, now, "counterparty_slot")
        spans: dict[int, tuple[datetime, datetime]] = {}
        for n, taker in ((swap.requester_slot, swap.counterparty), (swap.counterparty_slot, swap.requester)):
            periods = list(rotation.shifts.filter(slot=n).order_by("period").values_list("period", flat=True))
            start, end = periods[0].lower, periods[-1].upper
            _require_available(user=taker, start=start, end=end)
            _require_single_layer(rotation=rotation, user=taker, start=start, end=end)
            spans[n] = (start, end)
        changed = _rematerialise(
            rotation=rotation,
            slots=set(slots),
            plan_changes={
                swap.requester_slot: (swap.counterparty_id, Shift.Source.SWAP),
                swap.counterparty_slot: (swap.requester_id, Shift.Source.SWAP),
            },
            now=now,
        )
        _require_consecutive_days(
            rotation=rotation,
            user_id=swap.counterparty_id,
            start=spans[swap.requester_slot][0],
            end=spans[swap.requester_slot][1],
        )
        _require_consecutive_days(
            rotation=rotation,
            user_id=swap.requester_id,
            start=spans[swap.counterparty_slot][0],
            end=spans[swap.counterparty_slot][1],
        )
        swap.status = Swap.Status.ACCEPTED
        swap.decided_at = now
        swap.save(update_fields=["status", "decided_at"])
        if changed:
            _notify_schedule_changed(rotation=rotation, user_ids=changed, now=now)
    return swap


def swap_decline(*, swap: Swap, user: AbstractBaseUser, now: datetime | None = None) -> Swap:
    now = now or timezone.now()
    with transaction.atomic():
        swap = Swap.objects.select_for_update().get(pk=swap.pk)
        if swap.status != Swap.Status.PENDING:
            return swap
        if user.pk not in (swap.counterparty_id, swap.requester_id):
            raise DomainError("Only the two people of a swap can decline or cancel it.", code="not_party")
        swap.status = Swap.Status.DECLINED if user.pk == swap.counterparty_id else Swap.Status.CANCELLED
        swap.decided_at = now
        swap.save(update_fields=["status", "decided_at"])
    return swap


def _frozen_shift_of(*, user_id: int, start: datetime, end: datetime, now: datetime, rotation_ids=None) -> Shift | None:
    """A current-or-next (frozen) shift held by the user overlapping [start, end), if any."""
    shifts = Shift.objects.filter(
        user_id=user_id, period__overlap=DateTimeTZRange(max(start, now), end)
    ).select_related("rotation")
    if rotation_ids is not None:
        shifts = shifts.filter(rotation_id__in=rotation_ids)
    limits: dict[int, datetime | None] = {}
    for shift in shifts.order_by("period"):
        if shift.rotation_id not in limits:
            limits[shift.rotation_id] = frozen_until(rotation=shift.rotation, now=now)
        limit = limits[shift.rotation_id]
        if limit is not None and shift.period.lower < limit:
            return shift
    return None


def unavailability_create(
    *,
    user: AbstractBaseUser,
    start: datetime,
    end: datetime,
    kind: str = Unavailability.Kind.VACATION,
    note: str = "",
    now: datetime | None = None,
) -> Unavailability:
    """Record a vacation or sick leave; every rotation of the person is re-planned around it. Refused while
    the person holds a frozen (current or next) shift in that period: an override must replace them first."""
    now = now or timezone.now()
    if end <= start:
        raise ValidationError({"end": "The end must be after the start."})
    with transaction.atomic():
        frozen = _frozen_shift_of(user_id=user.pk, start=start, end=end, now=now)
        if frozen is not None:
            raise DomainError(
                f"Rule 'a frozen shift keeps its holder': {user} holds the current or next shift of "
                f"{frozen.rotation} then; add an override for it first.",
                code="frozen_shift",
                field="start",
            )
        unavailability = Unavailability.objects.create(
            user=user, period=DateTimeTZRange(start, end), kind=kind, note=note
        )
        for rotation in Rotation.objects.filter(members__user=user, is_active=True).distinct():
            rotation_generate(rotation=rotation, now=now)
    return unavailability


def unavailability_delete(*, unavailability: Unavailability, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        user = unavailability.user
        unavailability.delete()
        for rotation in Rotation.objects.filter(members__user=user, is_active=True).distinct():
            rotation_generate(rotation=rotation, now=now)


def rotation_member_add(
    *,
    rotation: Rotation,
    user: AbstractBaseUser,
    position: int | None = None,
    active_from: datetime | None = None,
    active_until: datetime | None = None,
    now: datetime | None = None,
) -> RotationMember:
    """Add someone; only slots after the next one are re-planned (who is on call now never changes)."""
    with transaction.atomic():
        rotation = _lock(rotation)
        if rotation.members.filter(user=user).exists():
            raise ValidationError({"user": f"{user} is already a member of this rotation."})
        if position is None:
            position = (rotation.members.aggregate(p=Max("position"))["p"] or 0) + 1
        member = RotationMember.objects.create(
            rotation=rotation, user=user, position=position, active_from=active_from, active_until=active_until
        )
        rotation_generate(rotation=rotation, now=now)
    return member


def rotation_member_remove(*, member: RotationMember, now: datetime | None = None) -> None:
    """Remove someone: refused while they hold the current or next shift (add an override first)."""
    now = now or timezone.now()
    with transaction.atomic():
        rotation = _lock(member.rotation)
        frozen = _frozen_shift_of(
            user_id=member.user_id, start=now, end=now + rotation.horizon, now=now, rotation_ids=[rotation.pk]
        )
        if frozen is not None:
            raise DomainError(
                f"Rule 'a frozen shift keeps its holder': {member.user} holds the current or next shift; "
                "add an override for it before removing them.",
                code="frozen_shift",
                field="user",
            )
        member.delete()
        rotation_generate(rotation=rotation, now=now)


def rotation_members_reorder(
    *, rotation: Rotation, user_ids: list[int], now: datetime | None = None
) -> list[RotationMember]:
    with transaction.atomic():
        rotation = _lock(rotation)
        members = {m.user_id: m for m in rotation.members.all()}
        if set(user_ids) != set(members):
            raise ValidationError({"user_ids": "Give every member of the rotation exactly once."})
        for position, user_id in enumerate(user_ids):
            members[user_id].position = position
        RotationMember.objects.bulk_update(members.values(), ["position"])
        rotation_generate(rotation=rotation, now=now)
    return [members[u] for u in user_ids]


def rotation_save(*, rotation: Rotation, now: datetime | None = None) -> Rotation:
    """Create or change a rotation (validated), then re-plan its unfrozen slots."""
    rotation.full_clean()
    with transaction.atomic():
        rotation.save()
        rotation_generate(rotation=rotation, now=now)
    return rotation


def rotation_rotate_ical_token(*, rotation: Rotation) -> Rotation:
    from oncall.models import new_ical_token

    with transaction.atomic():
        rotation.ical_token = new_ical_token()
        rotation.save(update_fields=["ical_token"])
    return rotation


def rotations_generate_all(*, now: datetime | None = None) -> list[GenerationResult]:
    """Keep every active rotation's horizon filled (the daily task and `generate_shifts`). Primary layers
    first, so secondary layers plan around them."""
    ids = list(Rotation.objects.filter(is_active=True).order_by("layer", "pk").values_list("pk", flat=True))
    return [rotation_generate(rotation=Rotation(pk=pk), now=now) for pk in ids]


def calendar_feed_get_or_create(*, user: AbstractBaseUser) -> CalendarFeed:
    with transaction.atomic():
        feed, _ = CalendarFeed.objects.get_or_create(user=user)
    return feed


def calendar_feed_rotate(*, user: AbstractBaseUser) -> CalendarFeed:
    from oncall.models import new_ical_token

    with transaction.atomic():
        feed, _ = CalendarFeed.objects.select_for_update().get_or_create(user=user)
        feed.token = new_ical_token()
        feed.save(update_fields=["token"])
    return feed
