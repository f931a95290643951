"""Reads that compute: lists for the admin and API, overdue status updates, timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents.models import Incident, IncidentEvent, SeverityPolicy, StatusUpdate


def incident_list() -> QuerySet[Incident]:
    """Incidents with everything a list row shows, in one query."""
    return Incident.objects.select_related("service__team", "commander", "comms_lead").order_by("-declared_at", "-id")


def incident_detail() -> QuerySet[Incident]:
    return Incident.objects.select_related(
        "service__team", "commander", "comms_lead", "created_by", "duplicate_of", "repeat_of"
    )


def incidents_visible_to(*, user) -> QuerySet[Incident]:
    """The incidents `user` may read and link to (repeat_of): every signed-in user reads every incident."""
    if user is None or not user.is_authenticated:
        return Incident.objects.none()
    return Incident.objects.all()


def incident_timeline(*, incident: Incident) -> QuerySet[IncidentEvent]:
    return IncidentEvent.objects.filter(incident=incident).select_related("actor").order_by("at", "id")


def status_updates(*, incident: Incident) -> QuerySet[StatusUpdate]:
    return StatusUpdate.objects.filter(incident=incident).select_related("author").order_by("at", "id")


@dataclass(frozen=True)
class OverdueUpdate:
    incident_id: int
    last_update_at: datetime
    cadence: timedelta


def incidents_overdue_for_update(*, now: datetime | None = None) -> list[OverdueUpdate]:
    """Open incidents whose last status update (or declaration) is older than their severity's cadence."""
    now = now or timezone.now()
    latest_update = StatusUpdate.objects.filter(incident=OuterRef("pk")).order_by("-at").values("at")[:1]
    cadence = SeverityPolicy.objects.filter(severity=OuterRef("severity")).values("update_cadence")[:1]
    rows = (
        Incident.objects.filter(status__in=Incident.OPEN_STATUSES)
        .annotate(
            last_update_at=Coalesce(Subquery(latest_update, output_field=DateTimeField()), F("declared_at")),
            cadence=Subquery(cadence, output_field=DurationField()),
        )
        .filter(cadence__isnull=False)
        .filter(
            last_update_at__lte=ExpressionWrapper(
                Value(now, output_field=DateTimeField()) - F("cadence"), output_field=DateTimeField()
            )
        )
        .values_list("pk", "last_update_at", "cadence")
    )
    return [OverdueUpdate(incident_id=pk, last_update_at=last, cadence=cad) for pk, last, cad in rows]


def escalations_due(*, grace: timedelta = timedelta(seconds=30), limit: int = 500) -> list[tuple[int, str]]:
    """(id, token) of running escalations whose step is overdue by more than `grace`: their task was lost."""
    from incidents.models import Escalation

    cutoff = timezone.now() - grace
    rows = (
        Escalation.objects.filter(status=Escalation.Status.RUNNING, next_run_at__lte=cutoff)
        .order_by("next_run_at")
        .values_list("pk", "token")[:limit]
    )
    return [(pk, str(token)) for pk, token in rows]
