from __future__ import annotations

from celery import shared_task
from django.core.management import call_command

from oncall import selectors, services


@shared_task(acks_late=True)
def deliver_notification_task(notification_id: int) -> None:
    services.notification_deliver(notification_id=notification_id)


@shared_task
def deliver_due_notifications() -> int:
    """The sweep: re-queue pending notifications whose task never ran. Nothing waits on a lost message."""
    ids = selectors.notifications_due()
    for notification_id in ids:
        deliver_notification_task.delay(notification_id)
    return len(ids)


@shared_task
def purge_expired_sessions() -> None:
    call_command("clearsessions")
