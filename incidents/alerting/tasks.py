"""Celery tasks of alert ingestion: thin, idempotent, ids in."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from incidents.alerting import selectors, services


@shared_task(acks_late=True)
def open_alert_incident_task(alert_id: int) -> int | None:
    """Scheduled with a countdown of the route's flap delay: opens the incident if the alert still fires."""
    incident = services.alert_open_due_incident(alert_id=alert_id)
    return incident.pk if incident else None


@shared_task
def open_due_alert_incidents() -> int:
    """Every minute: alerts whose flap delay passed without their task running (lost message, broker down)."""
    opened = 0
    for alert_id in selectors.alerts_due_for_incident(now=timezone.now()):
        if services.alert_open_due_incident(alert_id=alert_id) is not None:
            opened += 1
    return opened
