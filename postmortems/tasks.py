from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from postmortems import selectors, services


@shared_task
def send_postmortem_reminders() -> int:
    """Daily: each person gets at most one digest a day (the dedupe key carries the date), however often
    this runs. Returns how many digests were queued now."""
    now = timezone.now()
    today = selectors.org_today()
    return sum(
        int(services.reminders_send_digest(digest=digest, today=today))
        for digest in selectors.reminder_digests(now=now)
    )
