"""Game days: plan, start (declares practice incidents that page for real), complete with an outcome, abort."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from incidents.models import GameDay, Incident, Severity
from incidents.services import incident_add_note, incident_cancel, incident_declare
from oncall.errors import DomainError

PRACTICE_PREFIX = "[PRACTICE] "


def _locked(game_day: GameDay) -> GameDay:
    return GameDay.objects.select_for_update().get(pk=game_day.pk)


def _refuse(game_day: GameDay, *allowed: str, action: str) -> None:
    if game_day.status not in allowed:
        raise DomainError(
            f"The game day is {game_day.get_status_display().lower()}; it cannot be {action}.",
            code=f"game_day_{game_day.status}",
            field="status",
        )


def gameday_start(
    *, game_day: GameDay, actor: AbstractBaseUser | None, severity: str = Severity.P2, scenario: str = ""
) -> list[Incident]:
    """Start the drill: one practice incident per target service, declared (and paging) like a real one."""
    if severity not in Severity.values:
        raise ValidationError({"severity": [f"Severity must be one of {', '.join(Severity.values)}."]})
    with transaction.atomic():
        game_day = _locked(game_day)
        _refuse(game_day, GameDay.Status.PLANNED, action="started")
        targets = list(game_day.services.select_related("team").order_by("name"))
        if not targets:
            raise ValidationError({"services": ["A game day needs at least one target service."]})
        game_day.status = GameDay.Status.RUNNING
        game_day.started_at = timezone.now()
        game_day.save(update_fields=["status", "started_at"])
        incidents = []
        for service in targets:
            incident = incident_declare(
                title=f"{PRACTICE_PREFIX}{scenario or game_day.title}"[:200],
                severity=severity,
                service=service,
                actor=actor,
                summary=f"Game day drill: {game_day.title}\nHypothesis: {game_day.hypothesis}",
                is_practice=True,
            )
            Incident.objects.filter(pk=incident.pk).update(game_day=game_day)
            incident.game_day = game_day
            incidents.append(incident)
    return incidents


def gameday_complete(*, game_day: GameDay, actor: AbstractBaseUser | None, outcome: str, findings: str = "") -> GameDay:
    if outcome not in GameDay.Outcome.values:
        raise ValidationError({"outcome": [f"Outcome must be one of {', '.join(GameDay.Outcome.values)}."]})
    with transaction.atomic():
        game_day = _locked(game_day)
        _refuse(game_day, GameDay.Status.RUNNING, action="completed")
        game_day.status = GameDay.Status.COMPLETED
        game_day.outcome = outcome
        game_day.findings = findings or game_day.findings
        game_day.ended_at = timezone.now()
        game_day.save(update_fields=["status", "outcome", "findings", "ended_at"])
        for incident in Incident.objects.filter(game_day=game_day, status__in=Incident.OPEN_STATUSES):
            incident_add_note(incident=incident, actor=actor, message=f"Game day completed: {outcome}.")
    return game_day


def gameday_abort(*, game_day: GameDay, actor: AbstractBaseUser | None, reason: str) -> GameDay:
    """Stop the drill (an abort criterion was met): its open practice incidents are cancelled."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the game day was aborted."]})
    with transaction.atomic():
        game_day = _locked(game_day)
        _refuse(game_day, GameDay.Status.PLANNED, GameDay.Status.RUNNING, action="aborted")
        game_day.status = GameDay.Status.ABORTED
        game_day.ended_at = timezone.now()
        if game_day.started_at is None:
            game_day.started_at = game_day.ended_at
        game_day.findings = (game_day.findings + f"\n\nAborted: {reason.strip()}").strip()
        game_day.save(update_fields=["status", "ended_at", "started_at", "findings"])
        for incident in Incident.objects.filter(game_day=game_day, status__in=Incident.OPEN_STATUSES):
            incident_cancel(
                incident=incident,
                actor=actor,
                reason=Incident.ClosureReason.CANCELLED,
                message=f"Game day aborted: {reason}",
            )
    return game_day
