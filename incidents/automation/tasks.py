from __future__ import annotations

from celery import shared_task

from incidents.automation import services


@shared_task(acks_late=True)
def run_automation_task(run_id: int) -> str | None:
    """Send one automation run; a second delivery finds it no longer pending and does nothing."""
    run = services.automation_run_execute(run_id=run_id)
    return run.status if run is not None else None


@shared_task
def requeue_pending_automation_runs() -> int:
    """Every minute: runs still pending after a minute are queued again (a lost broker message delays, never drops)."""
    return len(services.automation_runs_requeue())
