"""Handoffs and pre-shift reminders, run by the every-minute task. Idempotent per (rotation, boundary)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Max
from django.utils import timezone

from oncall import clock, providers
from oncall.models import Handoff, Notification, Rotation, Shift
from oncall.services.notifications import notification_enqueue

LATE_AFTER = timedelta(minutes=2)
_ROLE_TEXT = {"incoming": "you are now on call", "outgoing": "you are off call"}
LOOKBACK = timedelta(days=7)
REMINDER_LEADS = (timedelta(hours=24), timedelta(hours=1))


def _fmt(rotation: Rotation, instant: datetime) -> str:
    return instant.astimezone(clock.zone(rotation.timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _handoff_body(*, rotation: Rotation, outgoing: Shift | None, incoming: Shift, late: bool) -> str:
    from oncall.selectors.escalation import escalation_chain, policies_with_steps

    lines = [
        f"Handoff of {rotation} at {_fmt(rotation, incoming.period.lower)}"
        + (" (recorded late: Firebreak was down at the boundary)" if late else ""),
        f"Outgoing: {outgoing.user if outgoing and outgoing.user else 'nobody (gap)'}",
        f"Incoming: {incoming.user or 'nobody (gap)'} until {_fmt(rotation, incoming.period.upper)}",
        "",
        "Open incidents of the team's services:",
    ]
    incidents = providers.open_incidents(rotation.team_id)
    lines += [f"- {i.ref} [{i.severity}] {i.title} {i.url}".rstrip() for i in incidents] or ["- none"]
    lines += ["", "Escalation:"]
    policies = list(policies_with_steps().filter(team_id=rotation.team_id))
    for policy in policies:
        chain = escalation_chain(policy=policy, at=incoming.period.lower)
        steps = [
            f"  step {s.index + 1} (+{int(s.starts_after.total_seconds() // 60)} min): "
            + (", ".join(str(u) for u in s.users) or "nobody, skipped")
            for s in chain
        ]
        lines += [f"- {policy.name}", *steps]
    if not policies:
        lines.append("- no escalation policy")
    if outgoing is not None and outgoing.user_id is not None:
        pages = Notification.objects.filter(
            user_id=outgoing.user_id,
            created_at__gte=outgoing.period.lower,
            created_at__lt=outgoing.period.upper,
            payload__kind="page",
        ).order_by("created_at")
        lines += ["", f"Pages during the shift just ended: {pages.count()}"]
        lines += [f"- {p.created_at:%Y-%m-%d %H:%M} UTC {p.subject}" for p in pages[:20]]
    return "\n".join(lines)


def _record(
    *, rotation: Rotation, boundary: datetime, outgoing: Shift | None, incoming: Shift, latest: bool, now: datetime
) -> Handoff | None:
    same = outgoing is not None and outgoing.user_id == incoming.user_id
    lateness = now - boundary
    if same:
        status = Handoff.Status.RECORDED
    elif not latest:
        status = Handoff.Status.MISSED
    else:
        status = Handoff.Status.LATE if lateness > LATE_AFTER else Handoff.Status.NOTIFIED
    with transaction.atomic():
        handoff, created = Handoff.objects.get_or_create(
            rotation=rotation,
            boundary_at=boundary,
            defaults={
                "outgoing_id": outgoing.user_id if outgoing else None,
                "incoming_id": incoming.user_id,
                "kind": Handoff.Kind.SAME_PERSON if same else Handoff.Kind.HANDOFF,
                "status": status,
                "lateness": lateness,
            },
        )
        if not created:
            return None
        if status in (Handoff.Status.NOTIFIED, Handoff.Status.LATE):
            body = _handoff_body(
                rotation=rotation, outgoing=outgoing, incoming=incoming, late=status == Handoff.Status.LATE
            )
            recipients = [("incoming", incoming.user), ("outgoing", outgoing.user if outgoing else None)]
            for role, user in recipients:
                if user is None:
                    continue
                notification_enqueue(
                    dedupe_key=f"oncall:handoff:{handoff.pk}:{role}",
                    user=user,
                    subject=f"On-call handoff: {rotation} — {_ROLE_TEXT[role]}",
                    body=body,
                    payload={"kind": "handoff", "handoff": handoff.pk, "role": role},
                )
            if rotation.team.chat_channel:
                notification_enqueue(
                    dedupe_key=f"oncall:handoff:{handoff.pk}:team",
                    user=None,
                    channel=Notification.Channel.SLACK,
                    address=rotation.team.chat_channel,
                    subject=f"On-call handoff: {rotation}: {incoming.user or 'nobody (gap)'} is now on call",
                    body=body,
                    payload={"kind": "handoff", "handoff": handoff.pk, "role": "team"},
                )
    return handoff


def handoffs_process_rotation(*, rotation: Rotation, now: datetime | None = None) -> list[Handoff]:
    """Record every boundary of the rotation passed since the last recorded one (at most LOOKBACK back);
    notify only the latest. Running it twice, late, or concurrently records each boundary once."""
    now = now or timezone.now()
    last = Handoff.objects.filter(rotation=rotation).aggregate(at=Max("boundary_at"))["at"]
    since = max(last, now - LOOKBACK) if last else now - LOOKBACK
    shifts = list(
        Shift.objects.filter(
            rotation=rotation, period__overlap=DateTimeTZRange(since - timedelta(seconds=1), now, "[]")
        )
        .select_related("user")
        .order_by("period")
    )
    boundaries = []
    for index, shift in enumerate(shifts):
        start = shift.period.lower
        if since < start <= now and (last is None or start > last):
            previous = shifts[index - 1] if index > 0 and shifts[index - 1].period.upper == start else None
            boundaries.append((start, previous, shift))
    recorded = []
    for i, (boundary, outgoing, incoming) in enumerate(boundaries):
        handoff = _record(
            rotation=rotation,
            boundary=boundary,
            outgoing=outgoing,
            incoming=incoming,
            latest=i == len(boundaries) - 1,
            now=now,
        )
        if handoff is not None:
            recorded.append(handoff)
    return recorded


def handoffs_process(*, now: datetime | None = None) -> list[Handoff]:
    now = now or timezone.now()
    recorded: list[Handoff] = []
    for rotation in Rotation.objects.filter(is_active=True).select_related("team"):
        recorded += handoffs_process_rotation(rotation=rotation, now=now)
    return recorded


def reminders_send(*, now: datetime | None = None, leads: tuple[timedelta, ...] = REMINDER_LEADS) -> int:
    """Remind each holder before their shift starts: once per lead (24 h, 1 h), never for a continuation
    of their own shift."""
    now = now or timezone.now()
    horizon = now + max(leads)
    shifts = (
        Shift.objects.filter(period__startswith__gt=now, period__startswith__lte=horizon, user__isnull=False)
        .select_related("rotation__team", "user")
        .order_by("period")
    )
    sent = 0
    for shift in shifts:
        start = shift.period.lower
        continues = Shift.objects.filter(
            rotation_id=shift.rotation_id, user_id=shift.user_id, period__endswith=start
        ).exists()
        if continues:
            continue
        lead = min(lead for lead in leads if start - now <= lead)
        _, created = notification_enqueue(
            dedupe_key=f"oncall:reminder:{shift.rotation_id}:{shift.key}:{shift.user_id}:{int(start.timestamp())}:{int(lead.total_seconds())}",
            user=shift.user,
            subject=f"Reminder: you are on call for {shift.rotation} from {_fmt(shift.rotation, start)}",
            body=f"Your shift runs from {_fmt(shift.rotation, start)} to {_fmt(shift.rotation, shift.period.upper)}.",
            payload={"kind": "shift_reminder", "shift": shift.pk, "lead_seconds": int(lead.total_seconds())},
        )
        sent += int(created)
    return sent
