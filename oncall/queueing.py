"""Queue a Celery task after the current transaction commits, without letting a broker outage fail the
request that committed. The rows are the source of truth; every queued task has a periodic sweep that
finds work whose task was never delivered (notifications, escalation steps, flap delays)."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, countdown: float | None = None) -> None:
    def publish() -> None:
        try:
            task.apply_async(args, countdown=countdown)
        except Exception:  # noqa: BLE001 - any broker failure: the committed row stays, the sweep retries
            logger.warning("broker unavailable: %s%r not queued now; the periodic sweep will", task.name, args)

    transaction.on_commit(publish)
