"""Explicit changes of the schedule: overrides, swaps, unavailability, members, rotations, calendar feeds.

Every function is one transaction. Hard-rule breaches raise DomainError naming the rule, after which the
transaction rolls back and nothing is changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Max
from django.utils import timezone

from oncall import clock, formatting
from oncall.errors import DomainError
from oncall.models import CalendarFeed, Override, Rotation, RotationMember, Shift, Swap, Unavailability
from oncall.selectors.schedule import override_refusal
from oncall.services.generation import (
    EPSILON_DAYS,
    GenerationResult,
    Piece,
    _apply,
    _lock,
    _notify_schedule_changed,
    _pieces_for_slot,
    frozen_until,
    rotation_generate,
)
from oncall.services.notifications import notification_enqueue

# --- explicit changes: the plan of some slots is rewritten, then hard rules are checked ---------------------


def _rematerialise(
    *, rotation: Rotation, slots: set[int], plan_changes: dict[int, tuple[int | None, str]] | None = None, now: datetime
) -> set[int]:
    """Recompute the pieces of `slots` from their plan (optionally changed) and the active overrides.

    A slot normally has one planned holder; a frozen gap filled again from some instant on has two (nobody
    before, the new holder after), and each part keeps its own plan."""
    plan_changes = plan_changes or {}
    rows = list(rotation.shifts.filter(slot__in=slots).order_by("period"))
    segments: list[list[Shift]] = []
    for row in rows:
        previous = segments[-1][-1] if segments else None
        if previous is not None and previous.slot == row.slot and previous.planned_user_id == row.planned_user_id:
            segments[-1].append(row)
        else:
            segments.append([row])
    desired: list[Piece] = []
    overrides = list(rotation.overrides.filter(cancelled_at__isnull=True))
    for segment in segments:
        n = segment[0].slot
        start = segment[0].period.lower
        end = segment[-1].period.upper
        planned = segment[0].planned_user_id
        plan_sources = {r.source for r in segment if r.source != Shift.Source.OVERRIDE}
        source = plan_sources.pop() if plan_sources else Shift.Source.GENERATED
        planned, source = plan_changes.get(n, (planned, source))
        relevant = [o for o in overrides if o.period.lower < end and start < o.period.upper]
        desired += _pieces_for_slot(
            slot=n, start=start, end=end, plan_user_id=planned, plan_source=source, overrides=relevant
        )
    return _apply(rotation=rotation, desired=desired, existing=rows, now=now)


def _slots_overlapping(rotation: Rotation, start: datetime, end: datetime) -> set[int]:
    return set(rotation.shifts.filter(period__overlap=DateTimeTZRange(start, end)).values_list("slot", flat=True))


def _require_available(*, rotation: Rotation, user: AbstractBaseUser, start: datetime, end: datetime) -> None:
    clash = (
        Unavailability.objects.filter(user=user, period__overlap=DateTimeTZRange(start, end)).order_by("period").first()
    )
    if clash is not None:
        raise DomainError(
            f"Rule 'never on call while unavailable': {formatting.person(user)} is unavailable "
            f"({clash.get_kind_display().lower()}) "
            f"{formatting.period(clash.period.lower, clash.period.upper, rotation.timezone)}.",
            code="unavailable",
            field="user",
        )


def _require_single_layer(*, rotation: Rotation, user: AbstractBaseUser, start: datetime, end: datetime) -> None:
    clash = (
        Shift.objects.filter(team_id=rotation.team_id, user=user, period__overlap=DateTimeTZRange(start, end))
        .exclude(layer=rotation.layer)
        .select_related("rotation__team")
        .order_by("period")
        .first()
    )
    if clash is not None:
        raise DomainError(
            f"Rule 'never primary and secondary at once': {formatting.person(user)} is on call in "
            f"{clash.rotation} {formatting.period(clash.period.lower, clash.period.upper, rotation.timezone)}.",
            code="dual_role",
            field="user",
        )


def _require_consecutive_days(
    *, rotation: Rotation, user_id: int, start: datetime, end: datetime, field: str | None = None
) -> None:
    """After a change: the run of contiguous shifts of `user_id` touching [start, end) is within the limit."""
    shape = clock.Shape.of(rotation)
    limit = rotation.max_consecutive_days
    rows = list(
        rotation.shifts.filter(
            user_id=user_id,
            period__overlap=DateTimeTZRange(start - timedelta(days=limit + 1), end + timedelta(days=limit + 1)),
        )
        .select_related("user")
        .order_by("period")
    )
    runs: list[list[datetime]] = []
    for row in rows:
        if runs and runs[-1][1] >= row.period.lower:
            runs[-1][1] = max(runs[-1][1], row.period.upper)
        else:
            runs.append([row.period.lower, row.period.upper])
    for run_start, run_end in runs:
        if (
            run_start < end
            and start < run_end
            and clock.planned_local_days(shape, run_start, run_end) > limit + EPSILON_DAYS
        ):
            holder = formatting.person(rows[0].user) if rows else "them"
            raise DomainError(
                f"Rule 'at most {limit} consecutive days': the change would keep {holder} on call "
                f"{formatting.period(run_start, run_end, rotation.timezone)}.",
                code="consecutive_days",
                field=field,
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
    overlaps another override, or breaks a hard rule; and, when `created_by` is not a manager, unless they are
    a member of the rotation taking the shift for themselves (PermissionDenied)."""
    now = now or timezone.now()
    refusal = override_refusal(actor=created_by, rotation=rotation, user=user)
    if refusal is not None:
        raise PermissionDenied(refusal)
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
        other = (
            rotation.overrides.filter(cancelled_at__isnull=True, period__overlap=DateTimeTZRange(start, end))
            .select_related("user")
            .order_by("period")
            .first()
        )
        if other is not None:
            raise DomainError(
                f"Rule 'one override at a time': this override overlaps the one of {formatting.person(other.user)} "
                f"{formatting.period(other.period.lower, other.period.upper, rotation.timezone)}; cancel that first.",
                code="override_overlap",
                field="start",
            )
        _require_available(rotation=rotation, user=user, start=start, end=end)
        _require_single_layer(rotation=rotation, user=user, start=start, end=end)
        override = Override.objects.create(
            rotation=rotation, user=user, period=DateTimeTZRange(start, end), reason=reason, created_by=created_by
        )
        changed = _rematerialise(rotation=rotation, slots=_slots_overlapping(rotation, start, end), now=now)
        _require_consecutive_days(rotation=rotation, user_id=user.pk, start=start, end=end, field="end")
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
    first = rotation.shifts.filter(slot=slot).order_by("period").values_list("period", flat=True).first()
    if first is None:
        raise DomainError(
            "Rule 'swaps exchange future slots': there is no such shift in this rotation.",
            code="slot_not_future",
            field=field_name,
        )
    if first.lower <= now:
        raise DomainError(
            "Rule 'swaps exchange future slots': that shift started "
            f"{formatting.when(first.lower, rotation.timezone)} ({rotation.timezone}).",
            code="slot_not_future",
            field=field_name,
        )


def _swap_body(*, rotation: Rotation, requester: AbstractBaseUser, swap: Swap) -> str:
    def span(slot: int) -> str:
        periods = list(rotation.shifts.filter(slot=slot).order_by("period").values_list("period", flat=True))
        return formatting.period(periods[0].lower, periods[-1].upper, rotation.timezone)

    return (
        f"{formatting.person(requester)} would take your shift {span(swap.counterparty_slot)}\n"
        f"and give you theirs {span(swap.requester_slot)}.\nAccept or decline the swap in Firebreak."
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
            subject=f"{formatting.person(requester)} asks to swap on-call shifts with you ({rotation})",
            body=_swap_body(rotation=rotation, requester=requester, swap=swap),
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
            _require_available(rotation=rotation, user=taker, start=start, end=end)
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


def frozen_shift_of(*, user_id: int, start: datetime, end: datetime, now: datetime, rotation_ids=None) -> Shift | None:
    """A current-or-next (frozen) shift held by the user overlapping [start, end), if any."""
    if max(start, now) >= end:
        return None
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
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError({"start": "Give times with a time zone."})
    if end <= start:
        raise ValidationError({"end": "The end must be after the start."})
    if end <= now:
        raise ValidationError({"end": "This period is over: record unavailability that has not ended yet."})
    with transaction.atomic():
        other = (
            Unavailability.objects.filter(user=user, period__overlap=DateTimeTZRange(start, end))
            .order_by("period")
            .first()
        )
        if other is not None:
            raise DomainError(
                f"Rule 'one unavailability at a time': {formatting.person(user)} is already unavailable "
                f"({other.get_kind_display().lower()}) "
                f"{formatting.period(other.period.lower, other.period.upper, formatting.person_zone(user))}; "
                "delete that one first or pick another period.",
                code="unavailability_overlap",
                field="start",
            )
        frozen = frozen_shift_of(user_id=user.pk, start=start, end=end, now=now)
        if frozen is not None:
            raise DomainError(
                f"Rule 'a frozen shift keeps its holder': {formatting.person(user)} holds the current or next "
                f"shift of {frozen.rotation} "
                f"{formatting.period(frozen.period.lower, frozen.period.upper, frozen.rotation.timezone)}; "
                "add an override for it first.",
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
            raise ValidationError({"user": f"{formatting.person(user)} is already a member of this rotation."})
        if position is None:
            position = (rotation.members.aggregate(p=Max("position"))["p"] or 0) + 1
        member = RotationMember(
            rotation=rotation, user=user, position=position, active_from=active_from, active_until=active_until
        )
        member.full_clean()
        member.save()
        rotation_generate(rotation=rotation, now=now)
    return member


def rotation_member_remove(*, member: RotationMember, now: datetime | None = None) -> None:
    """Remove someone: refused while they hold the current or next shift (add an override first)."""
    now = now or timezone.now()
    with transaction.atomic():
        rotation = _lock(member.rotation)
        frozen = frozen_shift_of(
            user_id=member.user_id, start=now, end=now + rotation.horizon, now=now, rotation_ids=[rotation.pk]
        )
        if frozen is not None:
            raise DomainError(
                f"Rule 'a frozen shift keeps its holder': {formatting.person(member.user)} holds the current or "
                f"next shift {formatting.period(frozen.period.lower, frozen.period.upper, rotation.timezone)}; "
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
        if len(user_ids) != len(members) or set(user_ids) != set(members):
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
