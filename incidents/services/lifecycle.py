"""Every write that does incident business. One transaction and one timeline event per state change.

Lock order: every service here locks the incident row first (`_locked`, SELECT … FOR UPDATE) and only then
anything that hangs off it; the escalation row is locked after it by the transition listener
(incidents.services.escalation.escalation_stop), the same order the escalation task takes
(incidents.services.escalation.escalation_run). Do not lock an incident while holding its escalation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import capfirst, slugify

from incidents.models import (
    TIME_ORDER,
    Incident,
    IncidentEvent,
    IncidentRoleAssignment,
    Service,
    Severity,
    SeverityPolicy,
    StatusUpdate,
)
from oncall.errors import DomainError
from oncall.roles import is_manager

REOPEN_WINDOW = timedelta(days=7)
BACKFILLABLE = ("started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at")

# Hooks higher layers register in their AppConfig.ready(), so incidents never imports them.
# close guards: called with the incident inside the close transaction; raise DomainError to refuse.
CLOSE_GUARDS: list[Callable[[Incident], None]] = []
# transition listeners: called with (incident, kind) inside the transaction (enqueue with on_commit).
TRANSITION_LISTENERS: list[Callable[[Incident, str], None]] = []


def register_close_guard(guard: Callable[[Incident], None]) -> None:
    CLOSE_GUARDS.append(guard)


def register_transition_listener(listener: Callable[[Incident, str], None]) -> None:
    TRANSITION_LISTENERS.append(listener)


def _now() -> datetime:
    return timezone.now()


def _event(
    *,
    incident: Incident,
    kind: str,
    actor: AbstractBaseUser | None,
    message: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident, at=at or _now(), kind=kind, actor=actor, message=message, data=data or {}
    )


def _notify_listeners(incident: Incident, kind: str) -> None:
    for listener in TRANSITION_LISTENERS:
        listener(incident, kind)


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().select_related("service").get(pk=incident.pk)


def _user(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if actor is not None and actor.is_authenticated else None


def _refuse_if_finished(incident: Incident, action: str) -> None:
    if incident.status in (Incident.Status.CLOSED, Incident.Status.CANCELLED):
        raise DomainError(
            f"{incident.ref} is {incident.get_status_display().lower()}; it cannot be {action}.",
            code=f"incident_{incident.status}",
            field="status",
        )


def field_label(name: str) -> str:
    """The label a person sees for an incident field ("Detected at", "Communications lead")."""
    try:
        return str(capfirst(Incident._meta.get_field(name).verbose_name))
    except FieldDoesNotExist:
        return capfirst(name.replace("_", " "))


def format_time(value: datetime) -> str:
    """A time for messages: in the current time zone (the admin's, UTC by default), with the zone's name."""
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if local.second or local.microsecond else "%Y-%m-%d %H:%M %Z")


def _future_error(name: str, value: datetime, now: datetime) -> str:
    return f"{field_label(name)} ({format_time(value)}) cannot be in the future (it is now {format_time(now)})."


def next_ref(*, year: int) -> str:
    """INC-<year>-<n>, n counting up per year; atomic under concurrency."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_refcounter (year, value) VALUES (%s, 1) "
            "ON CONFLICT (year) DO UPDATE SET value = incidents_refcounter.value + 1 RETURNING value",
            [year],
        )
        (value,) = cursor.fetchone()
    return f"INC-{year}-{value}"


def bump_ref_counter(*, year: int, at_least: int) -> None:
    """Make sure later refs of `year` come after an imported INC-<year>-<at_least>."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_refcounter (year, value) VALUES (%s, %s) "
            "ON CONFLICT (year) DO UPDATE SET value = GREATEST(incidents_refcounter.value, EXCLUDED.value)",
            [year, at_least],
        )


def channel_name(*, ref: str, title: str) -> str:
    return f"{ref.lower()}-{slugify(title)}"[:80].rstrip("-")


def check_time_order(values: dict[str, datetime | None]) -> None:
    """The timestamp order the database enforces, checked first so the error names the field."""
    errors: dict[str, list[str]] = {}
    for earlier, later in TIME_ORDER:
        a, b = values.get(earlier), values.get(later)
        if a is not None and b is not None and b < a:
            message = (
                f"{field_label(later)} ({format_time(b)}) cannot be before "
                f"{field_label(earlier).lower()} ({format_time(a)})."
            )
            errors.setdefault(later, []).append(message)
    if errors:
        raise ValidationError(errors)


def incident_declare(
    *,
    title: str,
    severity: str,
    service: Service,
    actor: AbstractBaseUser | None,
    summary: str = "",
    started_at: datetime | None = None,
    detected_at: datetime | None = None,
    is_practice: bool = False,
    source: str = Incident.Source.MANUAL,
    commander: AbstractBaseUser | None = None,
    repeat_of: Incident | None = None,
) -> Incident:
    """Declare an incident: it is triggered now, paging starts after commit. `repeat_of` links an earlier
    incident this one repeats (the way to follow up one resolved too long ago to reopen)."""
    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors["title"] = ["A title is required."]
    if severity not in Severity.values:
        errors["severity"] = [f"Severity must be one of {', '.join(Severity.values)}."]
    if service is None:
        errors["service"] = ["A service is required."]
    now = _now()
    for name, value in (("started_at", started_at), ("detected_at", detected_at)):
        if value is not None and value > now:
            errors[name] = [_future_error(name, value, now)]
    if errors:
        raise ValidationError(errors)
    detected_at = detected_at or now
    started_at = started_at or detected_at
    check_time_order({"started_at": started_at, "detected_at": detected_at})
    actor = _user(actor)
    with transaction.atomic():
        policy = SeverityPolicy.objects.filter(severity=severity).first()
        ref = next_ref(year=now.year)
        incident = Incident.objects.create(
            ref=ref,
            title=title.strip(),
            summary=summary,
            severity=severity,
            status=Incident.Status.TRIGGERED,
            service=service,
            started_at=started_at,
            detected_at=detected_at,
            declared_at=now,
            is_practice=is_practice,
            source=source,
            created_by=actor,
            repeat_of=repeat_of,
            channel=channel_name(ref=ref, title=title) if policy and policy.channel_required else "",
        )
        _event(
            incident=incident,
            kind=IncidentEvent.Kind.DECLARED,
            actor=actor,
            at=now,
            message=f"{severity} declared on {service.name}: {incident.title}",
            data={
                "severity": severity,
                "service": service.slug,
                "channel": incident.channel,
                "source": source,
                **({"repeat_of": repeat_of.ref} if repeat_of is not None else {}),
            },
        )
        if commander is not None:
            _assign_role(incident=incident, user=commander, role=IncidentRoleAssignment.Role.COMMANDER, actor=actor)
        _notify_listeners(incident, IncidentEvent.Kind.DECLARED)
    return incident


def incident_acknowledge(*, incident: Incident, actor: AbstractBaseUser | None) -> Incident:
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        _refuse_if_finished(incident, "acknowledged")
        if incident.status == Incident.Status.RESOLVED:
            raise DomainError(
                f"{incident.ref} is resolved; reopen it instead of acknowledging.", code="incident_resolved"
            )
        if incident.status != Incident.Status.TRIGGERED:
            return incident  # already acknowledged (or further along): nothing to do
        now = max(_now(), incident.detected_at)
        incident.status = Incident.Status.ACKNOWLEDGED
        incident.acknowledged_at = now
        incident.save(update_fields=["status", "acknowledged_at"])
        _event(incident=incident, kind=IncidentEvent.Kind.ACKNOWLEDGED, actor=actor, at=now)
        if incident.commander_id is None and actor is not None:
            _assign_role(incident=incident, user=actor, role=IncidentRoleAssignment.Role.COMMANDER, actor=actor)
        _notify_listeners(incident, IncidentEvent.Kind.ACKNOWLEDGED)
    return incident


def incident_mitigate(*, incident: Incident, actor: AbstractBaseUser | None) -> Incident:
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        _refuse_if_finished(incident, "mitigated")
        if incident.status == Incident.Status.MITIGATED:
            return incident
        if incident.status == Incident.Status.RESOLVED:
            raise DomainError(f"{incident.ref} is already resolved.", code="incident_resolved")
        now = _now()
        incident.status = Incident.Status.MITIGATED
        if incident.mitigated_at is None:  # the first mitigation counts
            incident.mitigated_at = now
        incident.save(update_fields=["status", "mitigated_at"])
        _event(incident=incident, kind=IncidentEvent.Kind.MITIGATED, actor=actor, at=now)
        _notify_listeners(incident, IncidentEvent.Kind.MITIGATED)
    return incident


def incident_resolve(*, incident: Incident, actor: AbstractBaseUser | None, message: str = "") -> Incident:
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        _refuse_if_finished(incident, "resolved")
        if incident.status == Incident.Status.RESOLVED:
            return incident
        now = _now()
        incident.status = Incident.Status.RESOLVED
        incident.resolved_at = now
        if incident.mitigated_at is None:
            incident.mitigated_at = now
        incident.save(update_fields=["status", "resolved_at", "mitigated_at"])
        _event(incident=incident, kind=IncidentEvent.Kind.RESOLVED, actor=actor, at=now, message=message)
        _notify_listeners(incident, IncidentEvent.Kind.RESOLVED)
    return incident


def incident_close(*, incident: Incident, actor: AbstractBaseUser | None) -> Incident:
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.CLOSED:
            return incident
        if incident.status != Incident.Status.RESOLVED:
            raise DomainError(
                f"{incident.ref} is {incident.get_status_display().lower()}; only a resolved incident can be closed.",
                code="incident_not_resolved",
                field="status",
            )
        for guard in CLOSE_GUARDS:
            guard(incident)
        now = _now()
        incident.status = Incident.Status.CLOSED
        incident.closed_at = now
        incident.save(update_fields=["status", "closed_at"])
        _event(incident=incident, kind=IncidentEvent.Kind.CLOSED, actor=actor, at=now)
        _notify_listeners(incident, IncidentEvent.Kind.CLOSED)
    return incident


def incident_reopen(*, incident: Incident, actor: AbstractBaseUser | None, message: str = "") -> Incident:
    """resolved → acknowledged within 7 days; later, a new incident with repeat_of is the way."""
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status in Incident.OPEN_STATUSES:
            return incident
        if incident.status != Incident.Status.RESOLVED:
            raise DomainError(
                f"{incident.ref} is {incident.get_status_display().lower()}; only a resolved incident can be reopened.",
                code="incident_not_resolved",
                field="status",
            )
        now = _now()
        if now - incident.resolved_at > REOPEN_WINDOW:
            raise DomainError(
                f"{incident.ref} was resolved at {format_time(incident.resolved_at)}, more than 7 days ago, so it "
                f"cannot be reopened; declare a new incident that repeats it instead (Repeat of {incident.ref}; "
                f"in the API, repeat_of).",
                code="reopen_window_passed",
            )
        previous = incident.resolved_at
        incident.status = Incident.Status.ACKNOWLEDGED
        incident.resolved_at = None
        if incident.acknowledged_at is None:
            incident.acknowledged_at = now
        incident.save(update_fields=["status", "resolved_at", "acknowledged_at"])
        _event(
            incident=incident,
            kind=IncidentEvent.Kind.REOPENED,
            actor=actor,
            at=now,
            message=message,
            data={"previous_resolved_at": previous.isoformat()},
        )
        _notify_listeners(incident, IncidentEvent.Kind.REOPENED)
    return incident


def incident_cancel(
    *,
    incident: Incident,
    actor: AbstractBaseUser | None,
    reason: str,
    duplicate_of: Incident | None = None,
    message: str = "",
) -> Incident:
    """Close an incident that should not count: a duplicate, a false positive, or cancelled."""
    actor = _user(actor)
    if reason not in Incident.ClosureReason.values:
        raise ValidationError({"closure_reason": [f"Must be one of {', '.join(Incident.ClosureReason.values)}."]})
    if reason == Incident.ClosureReason.DUPLICATE and duplicate_of is None:
        raise ValidationError({"duplicate_of": ["A duplicate must name the incident it duplicates."]})
    if duplicate_of is not None and duplicate_of.pk == incident.pk:
        raise ValidationError({"duplicate_of": ["An incident cannot duplicate itself."]})
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.CANCELLED:
            return incident
        if incident.status == Incident.Status.CLOSED:
            raise DomainError(
                f"{incident.ref} is closed; it cannot be cancelled.", code="incident_closed", field="status"
            )
        now = _now()
        incident.status = Incident.Status.CANCELLED
        incident.closure_reason = reason
        incident.duplicate_of = duplicate_of if reason == Incident.ClosureReason.DUPLICATE else None
        incident.closed_at = now
        incident.save(update_fields=["status", "closure_reason", "duplicate_of", "closed_at"])
        _event(
            incident=incident,
            kind=IncidentEvent.Kind.CANCELLED,
            actor=actor,
            at=now,
            message=message,
            data={"reason": reason, "duplicate_of": duplicate_of.ref if duplicate_of else None},
        )
        _notify_listeners(incident, IncidentEvent.Kind.CANCELLED)
    return incident


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "not given" where None means "clear" (repeat_of)


def _check_edit(*, title: str | None, severity: str | None) -> None:
    if severity is not None and severity not in Severity.values:
        raise ValidationError({"severity": [f"Severity must be one of {', '.join(Severity.values)}."]})
    if title is not None and not title.strip():
        raise ValidationError({"title": ["A title is required."]})


def _check_repeat_of(incident: Incident, repeat_of: Incident | None) -> None:
    if repeat_of is not None and repeat_of.pk == incident.pk:
        raise ValidationError({"repeat_of": [f"{incident.ref} cannot repeat itself."]})


def _update_locked(
    incident: Incident,
    actor: AbstractBaseUser | None,
    *,
    title: str | None,
    summary: str | None,
    severity: str | None,
    repeat_of: Incident | None = UNSET,
) -> None:
    """Inside a transaction holding the incident lock. A finished incident is refused if anything changes."""
    changed: dict[str, dict[str, str | None]] = {}
    for name, value in (("title", title.strip() if title is not None else None), ("summary", summary)):
        if value is not None and value != getattr(incident, name):
            changed[name] = {"old": getattr(incident, name), "new": value}
    repeat_changed = repeat_of is not UNSET and (repeat_of.pk if repeat_of else None) != incident.repeat_of_id
    severity_changed = severity is not None and severity != incident.severity
    if not (changed or repeat_changed or severity_changed):
        return
    _refuse_if_finished(incident, "edited")
    if repeat_changed:
        _check_repeat_of(incident, repeat_of)
        old = incident.repeat_of.ref if incident.repeat_of_id else None
        changed["repeat_of"] = {"old": old, "new": repeat_of.ref if repeat_of else None}
        incident.repeat_of = repeat_of
    for name in ("title", "summary"):
        if name in changed:
            setattr(incident, name, changed[name]["new"])
    if changed:
        incident.save(update_fields=list(changed))
        _event(incident=incident, kind=IncidentEvent.Kind.EDITED, actor=actor, data=changed)
    if severity_changed:
        old = incident.severity
        incident.severity = severity
        fields = ["severity"]
        policy = SeverityPolicy.objects.filter(severity=severity).first()
        if policy and policy.channel_required and not incident.channel:
            incident.channel = channel_name(ref=incident.ref, title=incident.title)
            fields.append("channel")
        incident.save(update_fields=fields)
        _event(
            incident=incident,
            kind=IncidentEvent.Kind.SEVERITY_CHANGED,
            actor=actor,
            message=f"Severity {old} → {severity}",
            data={"old": old, "new": severity},
        )
        _notify_listeners(incident, IncidentEvent.Kind.SEVERITY_CHANGED)


def incident_update(
    *,
    incident: Incident,
    actor: AbstractBaseUser | None,
    title: str | None = None,
    summary: str | None = None,
    severity: str | None = None,
    repeat_of: Incident | None = UNSET,
) -> Incident:
    """Edit what responders may edit; a severity change is its own timeline event. A closed or cancelled
    incident is refused (nothing given that differs from what it holds changes nothing, and is no error)."""
    actor = _user(actor)
    _check_edit(title=title, severity=severity)
    with transaction.atomic():
        incident = _locked(incident)
        _update_locked(incident, actor, title=title, summary=summary, severity=severity, repeat_of=repeat_of)
    return incident


def can_correct_times(user: AbstractBaseUser | None) -> bool:
    """Managers correct incident times (README, docs/security.md); the API, the admin and the service ask this."""
    return is_manager(user)


def _correct_times_locked(
    incident: Incident, actor: AbstractBaseUser | None, *, reason: str, times: dict[str, datetime | None]
) -> None:
    """Inside a transaction holding the incident lock."""
    values = {name: getattr(incident, name) for name in BACKFILLABLE}
    changes = {name: value for name, value in times.items() if value != values[name]}
    if not changes:
        return
    if actor is not None and not can_correct_times(actor):
        raise PermissionDenied("Only managers correct incident times.")
    errors: dict[str, list[str]] = {}
    now = _now()
    held = _STAMPS_HELD_BY_STATUS.get(incident.status, ())
    for name, value in changes.items():
        if value is None and name in ("started_at", "detected_at"):
            errors[name] = [f"{field_label(name)} is required."]
        elif value is None and name in held:
            errors[name] = [
                f"{field_label(name)} cannot be cleared while the incident is {incident.get_status_display().lower()}."
            ]
        elif value is not None and value > now:
            errors[name] = [_future_error(name, value, now)]
    if errors:
        raise ValidationError(errors)
    before = {name: values[name] for name in changes}
    values.update(changes)
    check_time_order(values)
    for name, value in changes.items():
        setattr(incident, name, value)
    incident.save(update_fields=list(changes))
    _event(
        incident=incident,
        kind=IncidentEvent.Kind.TIMES_CORRECTED,
        actor=actor,
        message=reason,
        data={name: {"old": _iso(before[name]), "new": _iso(value)} for name, value in changes.items()},
    )


# The stamps a status stands on: clearing one would leave, e.g., a resolved incident with no resolve time (and a
# reopen computing its 7-day window from nothing).
_STAMPS_HELD_BY_STATUS = {
    Incident.Status.MITIGATED: ("mitigated_at",),
    Incident.Status.RESOLVED: ("mitigated_at", "resolved_at"),
    Incident.Status.CLOSED: ("mitigated_at", "resolved_at", "closed_at"),
    Incident.Status.CANCELLED: ("closed_at",),
}


def _check_times(times: dict[str, datetime | None]) -> None:
    unknown = set(times) - set(BACKFILLABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationError(
            {field: [f"{field_label(field)} cannot be corrected: it is set once, when the incident is declared."]}
        )


def incident_correct_times(
    *, incident: Incident, actor: AbstractBaseUser | None, reason: str = "", **times: datetime | None
) -> Incident:
    """Back-fill or correct timestamps (a manager fixing started_at). declared_at is never edited.

    Only managers (or the system, actor None) may; the new values are checked against the timestamp order
    first (400 naming the field, nothing written); the timeline keeps the old and the new values. Closed
    incidents may be corrected too (a postmortem finds when impact really began)."""
    if actor is not None and not can_correct_times(actor):
        raise PermissionDenied("Only managers correct incident times.")
    actor = _user(actor)
    _check_times(times)
    with transaction.atomic():
        incident = _locked(incident)
        _correct_times_locked(incident, actor, reason=reason, times=times)
    return incident


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _assign_role(
    *, incident: Incident, user: AbstractBaseUser, role: str, actor: AbstractBaseUser | None
) -> IncidentRoleAssignment | None:
    """Inside a transaction holding the incident lock."""
    field = "commander" if role == IncidentRoleAssignment.Role.COMMANDER else "comms_lead"
    if getattr(incident, f"{field}_id") == user.pk:
        return None
    now = _now()
    released = IncidentRoleAssignment.objects.filter(incident=incident, role=role, released_at__isnull=True)
    previous = [assignment.user_id for assignment in released]
    released.update(released_at=now)
    assignment = IncidentRoleAssignment.objects.create(
        incident=incident, user=user, role=role, assigned_at=now, assigned_by=actor
    )
    setattr(incident, field, user)
    incident.save(update_fields=[field])
    _event(
        incident=incident,
        kind=IncidentEvent.Kind.ROLE_ASSIGNED,
        actor=actor,
        at=now,
        message=f"{assignment.get_role_display()}: {user.get_username()}",
        data={"role": role, "user": user.get_username(), "previous_user_ids": previous},
    )
    return assignment


def incident_assign_role(
    *, incident: Incident, user: AbstractBaseUser, role: str, actor: AbstractBaseUser | None
) -> Incident:
    """Hand the commander or communications-lead role to `user`; the previous holder is released."""
    if role not in IncidentRoleAssignment.Role.values:
        raise ValidationError({"role": [f"Role must be one of {', '.join(IncidentRoleAssignment.Role.values)}."]})
    if not user.is_active:
        raise ValidationError({"user": [f"{user.get_username()} is not an active user."]})
    actor = _user(actor)
    with transaction.atomic():
        incident = _locked(incident)
        _refuse_if_finished(incident, "reassigned")
        _assign_role(incident=incident, user=user, role=role, actor=actor)
    return incident


def incident_edit(
    *,
    incident: Incident,
    actor: AbstractBaseUser | None,
    title: str | None = None,
    summary: str | None = None,
    severity: str | None = None,
    repeat_of: Incident | None = UNSET,
    commander: AbstractBaseUser | None = None,
    comms_lead: AbstractBaseUser | None = None,
    times: dict[str, datetime | None] | None = None,
    reason: str = "",
) -> Incident:
    """The incident change form as one change: the edit, the role handoffs and the time corrections in one
    transaction, all or nothing. A refusal of any part (a closed incident, a time out of order) writes none.

    Roles are handed over only to a user other than the holder (an empty value keeps the holder); times may
    be corrected on a finished incident, nothing else may change on one."""
    actor = _user(actor)
    times = times or {}
    roles = {"commander": commander, "comms_lead": comms_lead}  # the role's value is the incident's field name
    _check_edit(title=title, severity=severity)
    for role, user in roles.items():
        if user is not None and not user.is_active:
            raise ValidationError({role: [f"{user.get_username()} is not an active user."]})
    _check_times(times)
    with transaction.atomic():
        incident = _locked(incident)
        _update_locked(incident, actor, title=title, summary=summary, severity=severity, repeat_of=repeat_of)
        for role, user in roles.items():
            if user is not None and user.pk != getattr(incident, f"{role}_id"):
                _refuse_if_finished(incident, "reassigned")
                _assign_role(incident=incident, user=user, role=role, actor=actor)
        _correct_times_locked(incident, actor, reason=reason, times=times)
    return incident


def status_update_create(
    *,
    incident: Incident,
    author: AbstractBaseUser | None,
    message: str,
    audience: str = StatusUpdate.Audience.STAKEHOLDERS,
) -> StatusUpdate:
    if not (message or "").strip():
        raise ValidationError({"message": ["A status update needs a message."]})
    if audience not in StatusUpdate.Audience.values:
        raise ValidationError({"audience": [f"Audience must be one of {', '.join(StatusUpdate.Audience.values)}."]})
    author = _user(author)
    with transaction.atomic():
        incident = _locked(incident)
        _refuse_if_finished(incident, "updated")
        now = _now()
        update = StatusUpdate.objects.create(
            incident=incident, at=now, author=author, message=message.strip(), audience=audience
        )
        _event(
            incident=incident,
            kind=IncidentEvent.Kind.STATUS_UPDATE,
            actor=author,
            at=now,
            message=update.message,
            data={"audience": audience, "status_update_id": update.pk},
        )
        _notify_listeners(incident, IncidentEvent.Kind.STATUS_UPDATE)
    return update


def incident_add_note(*, incident: Incident, actor: AbstractBaseUser | None, message: str) -> IncidentEvent:
    """A responder's note on the timeline (what was tried, what was seen)."""
    if not (message or "").strip():
        raise ValidationError({"message": ["A note needs a message."]})
    with transaction.atomic():
        incident = _locked(incident)
        return _event(incident=incident, kind=IncidentEvent.Kind.NOTE, actor=_user(actor), message=message.strip())
