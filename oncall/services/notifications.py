from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from oncall import channels
from oncall.models import ContactMethod, Notification
from oncall.queueing import enqueue_on_commit

logger = logging.getLogger(__name__)


def _default_address(*, user: AbstractBaseUser | None, channel: str) -> str:
    if user is None:
        return ""
    method = ContactMethod.objects.filter(user=user, kind=channel).order_by("position", "id").first()
    if method is not None:
        return method.address
    if channel == Notification.Channel.EMAIL:
        return getattr(user, "email", "") or ""
    return ""


def notification_enqueue(
    *,
    dedupe_key: str,
    user: AbstractBaseUser | None,
    subject: str,
    body: str,
    channel: str = Notification.Channel.EMAIL,
    address: str | None = None,
    payload: dict | None = None,
) -> tuple[Notification, bool]:
    """Put a message in the outbox once per dedupe_key; delivery is queued after commit.

    Returns (notification, created). A key seen before returns the existing row and queues nothing.
    """
    from oncall.tasks import deliver_notification_task

    if address is None:
        address = _default_address(user=user, channel=channel)
    with transaction.atomic():
        notification, created = Notification.objects.get_or_create(
            dedupe_key=dedupe_key[:255],
            defaults={
                "user": user,
                "channel": channel,
                "address": address,
                "subject": subject[:255],
                "body": body,
                "payload": payload or {},
                "next_attempt_at": timezone.now(),
            },
        )
        if created:
            enqueue_on_commit(deliver_notification_task, notification.pk)
    return notification, created


def notification_deliver(*, notification_id: int) -> Notification | None:
    """Send one due, pending notification. Safe to call twice or concurrently: the row is locked, and a
    notification that is sent (or being sent by another worker) is skipped."""
    from oncall.tasks import deliver_notification_task

    now = timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk=notification_id, status=Notification.Status.PENDING)
            .first()
        )
        if notification is None:
            return None
        if notification.next_attempt_at and notification.next_attempt_at > now:
            return notification
        notification.attempts += 1
        sender = channels.SENDERS.get(notification.channel)
        try:
            if sender is None:
                raise channels.DeliveryError(f"no sender for channel {notification.channel!r}")
            sender(notification)
        except channels.DeliveryError as exc:
            notification.status = Notification.Status.FAILED
            notification.error = str(exc)
            notification.next_attempt_at = None
        except Exception as exc:  # noqa: BLE001 - any transport error is recorded and retried
            logger.warning("notification %s attempt %s failed: %s", notification.pk, notification.attempts, exc)
            notification.error = f"attempt {notification.attempts}: {type(exc).__name__}: {exc}"
            if notification.attempts >= settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS:
                notification.status = Notification.Status.FAILED
                notification.next_attempt_at = None
            else:
                delay = settings.FIREBREAK_NOTIFICATION_RETRY_SECONDS * 2 ** (notification.attempts - 1)
                notification.next_attempt_at = now + timedelta(seconds=delay)
                enqueue_on_commit(deliver_notification_task, notification.pk, countdown=delay)
        else:
            notification.status = Notification.Status.SENT
            notification.sent_at = timezone.now()
            notification.error = ""
            notification.next_attempt_at = None
        notification.save(update_fields=["attempts", "status", "error", "next_attempt_at", "sent_at"])
        if notification.status == Notification.Status.FAILED:
            for listener in FAILURE_LISTENERS:
                listener(notification)
    return notification


# Called inside the delivery transaction when a notification has finally failed. Higher layers register
# here (incidents puts a failed page on the incident's timeline), since oncall cannot import them.
FAILURE_LISTENERS: list = []


def register_failure_listener(listener) -> None:
    if listener not in FAILURE_LISTENERS:
        FAILURE_LISTENERS.append(listener)


def notification_retry(*, notification: Notification) -> Notification:
    """A manager asks for a failed notification to be tried again (admin action)."""
    from oncall.tasks import deliver_notification_task

    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification.pk)
        if notification.status != Notification.Status.FAILED:
            return notification
        notification.status = Notification.Status.PENDING
        notification.attempts = 0
        notification.next_attempt_at = timezone.now()
        notification.address = notification.address or _default_address(
            user=notification.user, channel=notification.channel
        )
        notification.save(update_fields=["status", "attempts", "next_attempt_at", "address"])
        enqueue_on_commit(deliver_notification_task, notification.pk)
    return notification
