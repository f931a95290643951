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


@shared_task
def process_handoffs() -> int:
    """Every minute: record passed boundaries (once each) and send due pre-shift reminders."""
    recorded = services.handoffs_process()
    services.reminders_send()
    return len(recorded)


@shared_task
def generate_shifts_task() -> int:
    """Daily: keep every active rotation materialised up to its horizon."""
    return len(services.rotations_generate_all())


@shared_task(acks_late=True)
def generate_rotation_task(rotation_id: int) -> None:
    from oncall.models import Rotation

    rotation = Rotation.objects.filter(pk=rotation_id).first()
    if rotation is not None:
        services.rotation_generate(rotation=rotation)
