from __future__ import annotations

from celery import shared_task

from incidents import selectors, services
from incidents.models import Incident


@shared_task
def remind_overdue_status_updates() -> int:
    """Every minute: one reminder per overdue period per open incident, however often it runs."""
    queued = 0
    for overdue in selectors.incidents_overdue_for_update():
        incident = Incident.objects.select_related("service", "commander", "comms_lead", "created_by").get(
            pk=overdue.incident_id
        )
        queued += services.incident_remind_status_update(
            incident=incident, last_update_at=overdue.last_update_at, cadence=overdue.cadence
        )
    return queued


@shared_task(acks_late=True)
def run_escalation_task(escalation_id: int, token: str | None = None) -> None:
    from incidents.services.escalation import escalation_run

    escalation_run(escalation_id=escalation_id, token=token)


@shared_task
def sweep_escalations() -> int:
    """Every minute: re-queue escalation steps whose task never ran (broker down, worker killed)."""
    due = selectors.escalations_due()
    for escalation_id, token in due:
        run_escalation_task.delay(escalation_id, token)
    return len(due)
