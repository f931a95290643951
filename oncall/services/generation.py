"""Generation: materialising a rotation's shifts up to its horizon, and the piece bookkeeping shared with
explicit changes (services/schedule.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Max
from django.utils import timezone

from oncall import clock, formatting
from oncall.models import (
    Holiday,
    Override,
    Rotation,
    RotationMember,
    ScheduleIssue,
    Shift,
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
        lines = [f"- {formatting.period(s.period.lower, s.period.upper, rotation.timezone)}" for s in upcoming]
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


@dataclass
class _Entry:
    """One slot of the plan, chronological: kept history, a frozen gap to fill again, or a slot to plan."""

    kind: str  # "kept" | "refill" | "plan"
    slot: int
    start: datetime
    end: datetime
    planned_user_id: int | None = None
    plan_source: str = Shift.Source.GENERATED
    rows: list[Shift] = field(default_factory=list)  # refill: the stored rows it replaces
    truncated: Shift | None = None  # refill of the current gap: its row, kept up to `start`


class _RoundRobin:
    """Round robin in the members' listed order, as a function of the plan so far (so a re-plan, or time
    passing, never reshuffles what was planned): each slot goes to the next member in the listed order after
    the last one who took a regular turn; a member skipped because a hard rule stopped them is owed and takes
    the next slot they can. A member added takes their place in that order; one removed leaves it. The first
    planned slot sets where the order stands."""

    def __init__(self, members: list[RotationMember]) -> None:
        self.cycle = [m.user_id for m in members]
        self.index = {user_id: i for i, user_id in enumerate(self.cycle)}
        self.by_user = {m.user_id: m for m in members}
        self.pointer: int | None = None
        self.owed: list[int] = []

    def order(self) -> list[RotationMember]:
        start = self.pointer or 0
        turns = [self.cycle[(start + i) % len(self.cycle)] for i in range(len(self.cycle))]
        return [self.by_user[u] for u in self.owed] + [self.by_user[u] for u in turns if u not in self.owed]

    def advance(self, user_id: int | None, skipped_because) -> None:
        """`user_id` took the slot as the plan's own choice; `skipped_because(member)` tells whether a member
        passed over on the way could not take it (then they are owed)."""
        if user_id is None or user_id not in self.index:
            return
        if user_id in self.owed:
            self.owed.remove(user_id)
            return
        if self.pointer is None:
            self.pointer = self.index[user_id]
        i = self.pointer
        while self.cycle[i % len(self.cycle)] != user_id:
            member = self.by_user[self.cycle[i % len(self.cycle)]]
            if member.user_id not in self.owed and skipped_because(member):
                self.owed.append(member.user_id)
            i += 1
        self.pointer = (self.index[user_id] + 1) % len(self.cycle)


def _history(kept: list[Shift]) -> list[_Entry]:
    """The kept rows as plan entries, one per slot (the pieces an override cut are joined again)."""
    entries: list[_Entry] = []
    for row in kept:
        last = entries[-1] if entries else None
        if last is not None and last.slot == row.slot and last.end == row.period.lower:
            last.end = row.period.upper
            last.rows.append(row)
        else:
            last = _Entry("kept", row.slot, row.period.lower, row.period.upper, row.planned_user_id, rows=[row])
            entries.append(last)
        if row.source != Shift.Source.OVERRIDE:
            last.plan_source = row.source
    return entries


def _split_frozen_gaps(entries: list[_Entry], now: datetime) -> list[_Entry]:
    """A frozen slot planned as a gap is planned again from now on (a member may have been added since):
    freezing keeps holders, not gaps. What already passed stays as it was."""
    out: list[_Entry] = []
    for entry in entries:
        if entry.planned_user_id is not None or entry.end <= now:
            out.append(entry)
            continue
        cut, truncated = entry.start, None
        if entry.start < now:
            holding = next(r for r in entry.rows if r.period.lower <= now < r.period.upper)
            if holding.source == Shift.Source.GAP:
                cut, truncated = now, holding
            else:  # an override holds it now: plan again after that piece
                cut = holding.period.upper
        if cut >= entry.end:
            out.append(entry)
            continue
        past = [r for r in entry.rows if r.period.upper <= cut]
        if past:
            out.append(_Entry("kept", entry.slot, entry.start, cut, None, rows=past))
        elif truncated is not None:
            out.append(_Entry("kept", entry.slot, entry.start, cut, None))
        rows = [r for r in entry.rows if r.period.upper > cut and r is not truncated]
        out.append(_Entry("refill", entry.slot, cut, entry.end, None, rows=rows, truncated=truncated))
    return out


def rotation_generate(*, rotation: Rotation, now: datetime | None = None) -> GenerationResult:
    """Materialise the rotation's shifts up to its horizon.

    The past, the current and the next slot are frozen (kept as they are once they exist, except a frozen gap
    that someone can now take); later slots are planned again from the members, their unavailability, the
    other layer and the history, and written only where they differ. Slots nobody can take become gap shifts
    with a critical issue, managers notified."""
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
            plan_from = max([shape.boundary(first_slot), *(r.period.upper for r in kept)])
        else:
            kept = [r for r in rows if r.period.lower < freeze_end]
            first_slot = shape.slot_at(freeze_end)
            plan_from = freeze_end
        kept_ids = {r.pk for r in kept}
        replan_rows = [r for r in rows if r.pk not in kept_ids]
        slot_starts: dict[int, datetime] = {}
        for row in replan_rows:
            slot_starts[row.slot] = min(slot_starts.get(row.slot, row.period.lower), row.period.lower)
        pinned_by_start = {  # swapped slots keep their holder while eligible
            slot_starts[r.slot]: r.planned_user_id for r in replan_rows if r.source == Shift.Source.SWAP
        }
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

        # Effective weighted hours of the kept rows in the window; the plan so far, chronological.
        weighted: dict[int, float] = defaultdict(float)
        for row in kept:
            if row.user_id is not None:
                weighted[row.user_id] += weigh(max(row.period.lower, window_start), row.period.upper)
        plan: list[tuple[datetime, datetime, int | None]] = []
        last_end: dict[int, datetime] = {}
        robin = _RoundRobin(members)

        def eligible(member: RotationMember, start: datetime, end: datetime, following=()) -> bool:
            if member.active_from and member.active_from > start:
                return False
            if member.active_until and member.active_until < end:
                return False
            if _overlaps(unavailable.get(member.user_id, []), start, end):
                return False
            if _overlaps(other_layer.get(member.user_id, []), start, end):
                return False
            run_start, run_end = start, end
            for p_start, p_end, p_user in reversed(plan):
                if p_user != member.user_id or p_end < run_start:
                    break
                run_start = p_start
            for entry in following:  # kept slots right after a frozen gap planned again
                if entry.planned_user_id != member.user_id or entry.start > run_end:
                    break
                run_end = entry.end
            # local days as planned: a clock change alone never makes a slot longer than it was planned
            return clock.planned_local_days(shape, run_start, run_end) <= rotation.max_consecutive_days + EPSILON_DAYS

        def short_rest(member: RotationMember, start: datetime) -> bool:
            previous = last_end.get(member.user_id)
            return previous is not None and previous < start and start - previous < rotation.min_rest

        def candidates_for(start: datetime, end: datetime, following=()) -> list[RotationMember]:
            if rotation.strategy == Rotation.Strategy.BALANCED:
                floor = now - timedelta(days=36500)
                order = sorted(
                    enumerate(members),
                    key=lambda im: (round(weighted[im[1].user_id], 6), last_end.get(im[1].user_id, floor), im[0]),
                )
                ordered = [m for _, m in order]
            else:
                ordered = robin.order()
            return [m for m in ordered if eligible(m, start, end, following)]

        def record(start: datetime, end: datetime, user_id: int | None, turn: int | None) -> None:
            """Append to the plan; `turn` is who the round robin itself chose (a swap keeps the order going)."""
            robin.advance(turn, lambda m: not eligible(m, start, end))
            plan.append((start, end, user_id))
            if user_id is not None:
                last_end[user_id] = end

        entries = _split_frozen_gaps(_history(kept), now)
        for n in range(first_slot, last + 1):
            start, end = shape.slot(n)
            start = max(start, plan_from)
            if start < end:  # else before what is frozen, or an hourly slot swallowed by a spring-forward gap
                entries.append(_Entry("plan", n, start, end))
        entries.sort(key=lambda e: e.start)

        desired: list[Piece] = []
        gap_periods: dict[int, tuple[datetime, datetime]] = {}
        rest_periods: dict[tuple[int, int], tuple[datetime, datetime]] = {}
        filled: list[tuple[int, datetime, datetime]] = []
        for position, entry in enumerate(entries):
            start, end, n = entry.start, entry.end, entry.slot
            if entry.kind == "kept":
                turn = entry.planned_user_id
                if entry.plan_source == Shift.Source.SWAP and members:
                    turn = next((m.user_id for m in candidates_for(start, end)), None)
                record(start, end, entry.planned_user_id, turn)
                continue
            following = []
            for later in entries[position + 1 :]:
                if later.kind != "kept":
                    break
                following.append(later)
            candidates = candidates_for(start, end, following)
            if entry.kind == "refill":
                if not candidates:  # still nobody: the gap stays as it is
                    record(start, end, None, None)
                    continue
                replan_rows += entry.rows
                if entry.truncated is not None:
                    row = entry.truncated
                    desired.append(Piece(row.key, row.slot, row.period.lower, start, None, None, Shift.Source.GAP))
                    replan_rows.append(row)
                filled.append((n, start, end))
            source = Shift.Source.GENERATED
            pinned_user = pinned_by_start.get(start) if entry.kind == "plan" else None
            turn = candidates[0].user_id if candidates else None
            chosen = next((m for m in candidates if pinned_user is not None and m.user_id == pinned_user), None)
            if chosen is not None:
                source = Shift.Source.SWAP
            else:
                chosen = candidates[0] if candidates else None
                if chosen is not None and short_rest(chosen, start):  # soft rule: assigned anyway, with a warning
                    result.rest_warnings.append((n, chosen.user_id))
                    rest_periods[(n, chosen.user_id)] = (start, end)
            user_id = chosen.user_id if chosen else None
            record(start, end, user_id, turn)
            if user_id is None:
                result.gap_slots.append(n)
                gap_periods[n] = (start, end)
            else:
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
        _record_issues(
            rotation=rotation, gaps=gap_periods, rests=rest_periods, replanned_from=plan_from, filled=filled, now=now
        )
    return result


def _record_issues(
    *,
    rotation: Rotation,
    gaps: dict[int, tuple[datetime, datetime]],
    rests: dict[tuple[int, int], tuple[datetime, datetime]],
    replanned_from: datetime,
    filled: list[tuple[int, datetime, datetime]] = (),
    now: datetime,
) -> None:
    """Open a critical issue per new gap (managers notified), a warning per short rest; resolve the open
    issues of re-planned slots that no longer apply, and the gap issues of frozen gaps filled again."""
    for n, start, end in filled:
        ScheduleIssue.objects.filter(
            rotation=rotation, resolved_at__isnull=True, kind=ScheduleIssue.Kind.GAP, slot=n,
            period__overlap=DateTimeTZRange(start, end),
        ).update(resolved_at=now)  # fmt: skip
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
        message = f"Nobody can take {rotation} {formatting.period(start, end, rotation.timezone)} under the hard rules."
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
    users = get_user_model().objects.in_bulk({user_id for _, user_id in rests}) if rests else {}
    for (n, user_id), (start, end) in sorted(rests.items()):
        if (start, user_id) in existing_rests:
            continue
        user = users.get(user_id)
        ScheduleIssue.objects.create(
            rotation=rotation,
            user_id=user_id,
            slot=n,
            period=DateTimeTZRange(start, end),
            severity=ScheduleIssue.Severity.WARNING,
            kind=ScheduleIssue.Kind.REST,
            message=(
                f"Less than {formatting.duration(rotation.min_rest)} of rest for {formatting.person(user)} before "
                f"the shift {formatting.period(start, end, rotation.timezone)}."
            ),
        )
