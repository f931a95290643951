"""Runbook reads: which runbooks match an incident, and which are stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents.models import Alert, Incident, IncidentRunbook, Runbook

STALE_AFTER = timedelta(days=90)


@dataclass(frozen=True)
class RunbookMatch:
    runbook: Runbook
    matched_by: str


def _url_matches(runbook: Runbook, url: str) -> bool:
    url = url.strip().rstrip("/")
    if not url:
        return False
    if runbook.source_url and runbook.source_url.rstrip("/") == url:
        return True
    return url.endswith(f"/runbooks/{runbook.slug}")


def runbooks_matching(*, incident: Incident) -> list[RunbookMatch]:
    """Runbooks for the incident: those its alerts name (alertname label or runbook_url annotation), else
    the service's general runbooks (no alert name). Two queries."""
    alerts = list(Alert.objects.filter(incident=incident).values_list("labels", "annotations"))
    names = {labels.get("alertname") for labels, _ in alerts if isinstance(labels, dict) and labels.get("alertname")}
    urls = {
        annotations.get("runbook_url")
        for _, annotations in alerts
        if isinstance(annotations, dict) and annotations.get("runbook_url")
    }
    variants = {u.strip().rstrip("/") for u in urls} | {u.strip().rstrip("/") + "/" for u in urls}
    candidates = list(
        Runbook.objects.filter(
            Q(service_id=incident.service_id) | Q(source_url__in=variants) | Q(slug__in=_slugs(urls))
        )
        .select_related("current_version", "service")
        .order_by("title", "id")
    )
    matches = []
    for runbook in candidates:
        if any(_url_matches(runbook, url) for url in urls):
            matches.append(RunbookMatch(runbook, IncidentRunbook.MatchedBy.RUNBOOK_URL))
        elif runbook.service_id == incident.service_id and runbook.alert_name and runbook.alert_name in names:
            matches.append(RunbookMatch(runbook, IncidentRunbook.MatchedBy.ALERT_NAME))
    if matches:
        return matches
    return [
        RunbookMatch(runbook, IncidentRunbook.MatchedBy.SERVICE)
        for runbook in candidates
        if runbook.service_id == incident.service_id and not runbook.alert_name
    ]


def _slugs(urls: set[str]) -> list[str]:
    out = []
    for url in urls:
        parts = url.strip().rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "runbooks":
            out.append(parts[-1])
    return out


def incident_runbook_links(*, incident_id: int) -> QuerySet[IncidentRunbook]:
    """The runbook versions shown for an incident, with what is needed to display them."""
    return (
        IncidentRunbook.objects.filter(incident_id=incident_id)
        .select_related("runbook__current_version", "version__author")
        .order_by("attached_at", "id")
    )


def runbooks_with_staleness(*, now: datetime | None = None) -> QuerySet[Runbook]:
    """Runbooks annotated with `last_edited_at`, `stale_for_age` (not reviewed for 90 days) and
    `incident_since_edit` (a real incident of the service declared after the last edit). One query."""
    now = now or timezone.now()
    newer_incident = Incident.objects.filter(
        service_id=OuterRef("service_id"),
        declared_at__gt=OuterRef("current_version__created_at"),
        is_practice=False,
    ).exclude(status=Incident.Status.CANCELLED)
    return Runbook.objects.select_related("service__team", "current_version").annotate(
        last_edited_at=Coalesce("current_version__created_at", "created_at"),
        stale_for_age=ExpressionWrapper(
            Q(reviewed_at__isnull=True) | Q(reviewed_at__lt=now - STALE_AFTER), output_field=BooleanField()
        ),
        incident_since_edit=Exists(newer_incident),
    )


def runbooks_stale(*, now: datetime | None = None, team_id: int | None = None) -> list[dict]:
    """Stale runbooks as plain data (for the monthly review): title, service, team, why."""
    queryset = runbooks_with_staleness(now=now).filter(Q(stale_for_age=True) | Q(incident_since_edit=True))
    if team_id is not None:
        queryset = queryset.filter(service__team_id=team_id)
    rows = []
    for runbook in queryset.order_by("service__name", "title"):
        reasons = []
        if runbook.stale_for_age:
            reasons.append("not reviewed for 90 days")
        if runbook.incident_since_edit:
            reasons.append("an incident since the last edit")
        rows.append(
            {
                "id": runbook.pk,
                "title": runbook.title,
                "service": runbook.service.name,
                "team": runbook.service.team.name,
                "version": runbook.current_version.number if runbook.current_version else None,
                "last_edited_at": runbook.last_edited_at.isoformat(),
                "reviewed_at": runbook.reviewed_at.isoformat() if runbook.reviewed_at else None,
                "reasons": reasons,
            }
        )
    return rows
