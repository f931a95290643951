"""Wires the response features to the incident lifecycle (registered in IncidentsConfig.ready()).

Inside the incident's transaction: chat news and stakeholder e-mails go to the outbox. After commit, a task
records the runbook versions shown and starts the automatic actions (the alerts of an alert-declared
incident are attached later in the same transaction, so matching waits for the commit)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from incidents.automation.services import automation_runs_for_incident
from incidents.chatops.news import incident_post_news
from incidents.models import Incident, IncidentEvent, StatusUpdate
from incidents.runbooks.services import incident_attach_runbooks
from incidents.stakeholders import status_update_notify_subscribers
from oncall.queueing import enqueue_on_commit


def incident_response_prepare(*, incident_id: int) -> Incident | None:
    """Attach matching runbooks and run automatic rules. Idempotent: both record each match once."""
    incident = Incident.objects.select_related("service__team").filter(pk=incident_id).first()
    if incident is None:
        return None
    incident_attach_runbooks(incident=incident)
    automation_runs_for_incident(incident=incident)
    return incident


@shared_task(acks_late=True)
def prepare_incident_response_task(incident_id: int) -> None:
    incident_response_prepare(incident_id=incident_id)


def incidents_response_sweep(
    *, newer_than: timedelta = timedelta(minutes=15), older_than: timedelta = timedelta(minutes=1)
) -> list[int]:
    """The sweep: prepare again the open incidents declared in the last minutes, in case the task queued at
    declaration was lost (broker outage). Both steps record each match once, so a repeat adds nothing."""
    now = timezone.now()
    ids = list(
        Incident.objects.filter(
            declared_at__gte=now - newer_than, declared_at__lt=now - older_than, status__in=Incident.OPEN_STATUSES
        ).values_list("pk", flat=True)
    )
    for incident_id in ids:
        incident_response_prepare(incident_id=incident_id)
    return ids


@shared_task
def sweep_incident_response() -> int:
    """Every five minutes: see incidents_response_sweep."""
    return len(incidents_response_sweep())


def on_incident_transition(incident: Incident, kind: str) -> None:
    if kind == IncidentEvent.Kind.DECLARED:
        enqueue_on_commit(prepare_incident_response_task, incident.pk)
    incident_post_news(incident=incident, kind=kind)
    if kind == IncidentEvent.Kind.STATUS_UPDATE:
        update = (
            StatusUpdate.objects.filter(incident=incident).select_related("incident__service").order_by("-id").first()
        )
        if update is not None:
            status_update_notify_subscribers(update=update)
