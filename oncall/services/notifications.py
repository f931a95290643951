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


def contact_method_save(*, method: ContactMethod) -> ContactMethod:
    """Add or change a contact method. Its address must pass the channel's rule (a webhook URL the egress
    rules allow): ValidationError naming `address` otherwise, and nothing is saved."""
    channels.validate_contact_address(kind=method.kind, address=method.address)
    with transaction.atomic():
        method.save()
    return method


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


def _claim(*, notification_id: int, now) -> tuple[Notification | None, bool]:
    """First short transaction: lock the row, take one attempt and a lease, commit. Returns (notification,
    claimed). While the lease runs (`next_attempt_at` in the future) nobody else claims the row; when a worker
    dies mid-send the lease runs out and the sweep queues the row again."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk=notification_id, status=Notification.Status.PENDING)
            .first()
        )
        if notification is None:
            return None, False
        if notification.next_attempt_at and notification.next_attempt_at > now:
            return notification, False  # not due yet, or claimed by another worker
        if notification.attempts >= settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS:
            # the last attempt was claimed and never reported back (its worker died): do not send again
            notification.status = Notification.Status.FAILED
            notification.error = f"attempt {notification.attempts} never finished (worker lost); not retried"
            notification.next_attempt_at = None
            notification.save(update_fields=["status", "error", "next_attempt_at"])
            _notify_failure(notification)
            return notification, False
        notification.attempts += 1
        notification.next_attempt_at = now + timedelta(seconds=settings.FIREBREAK_NOTIFICATION_LEASE_SECONDS)
        notification.save(update_fields=["attempts", "next_attempt_at"])
    return notification, True


def _send(notification: Notification) -> tuple[str, str]:
    """Outside any transaction. Returns (outcome, error): outcome is "sent", "retry" (a transport error) or
    "failed" (cannot succeed: a refusal, or a bug, which is never retried)."""
    sender = channels.SENDERS.get(notification.channel)
    try:
        if sender is None:
            raise channels.DeliveryError(f"no sender for channel {notification.channel!r}")
        sender(notification)
    except channels.DeliveryError as exc:
        return "failed", str(exc)
    except channels.RETRYABLE_ERRORS as exc:
        logger.warning("notification %s attempt %s failed: %s", notification.pk, notification.attempts, exc)
        return "retry", f"attempt {notification.attempts}: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug: fail visibly at once rather than retry it
        logger.exception("notification %s cannot be sent (not retried)", notification.pk)
        return "failed", f"{type(exc).__name__}: {exc} (an error in Firebreak, not retried)"
    return "sent", ""


def _record(*, notification_id: int, attempt: int, outcome: str, error: str) -> Notification:
    """Second short transaction: record what the attempt did. If the lease ran out and another worker claimed
    the row meanwhile, only a success is recorded (the newer attempt owns any failure)."""
    from oncall.tasks import deliver_notification_task

    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if notification.status != Notification.Status.PENDING:
            return notification
        if notification.attempts != attempt and outcome != "sent":
            return notification
        now = timezone.now()
        if outcome == "sent":
            notification.status = Notification.Status.SENT
            notification.sent_at = now
            notification.error = ""
            notification.next_attempt_at = None
        elif outcome == "retry" and notification.attempts < settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS:
            delay = settings.FIREBREAK_NOTIFICATION_RETRY_SECONDS * 2 ** (notification.attempts - 1)
            notification.error = error
            notification.next_attempt_at = now + timedelta(seconds=delay)
            enqueue_on_commit(deliver_notification_task, notification.pk, countdown=delay)
        else:
            notification.status = Notification.Status.FAILED
            notification.error = error
            notification.next_attempt_at = None
        notification.save(update_fields=["status", "error", "next_attempt_at", "sent_at"])
        if notification.status == Notification.Status.FAILED:
            _notify_failure(notification)
    return notification


def notification_deliver(*, notification_id: int) -> Notification | None:
    """Send one due, pending notification. Safe to call twice or concurrently: a short transaction claims it
    (one attempt, a lease), the message goes out with no transaction open and no row locked, and a second
    short transaction records the outcome. Only transport errors are retried, with exponential backoff."""
    notification, claimed = _claim(notification_id=notification_id, now=timezone.now())
    if not claimed:
        return notification
    outcome, error = _send(notification)
    return _record(notification_id=notification.pk, attempt=notification.attempts, outcome=outcome, error=error)


def _notify_failure(notification: Notification) -> None:
    for listener in FAILURE_LISTENERS:
        listener(notification)


# Called inside the recording (or claiming) transaction when a notification has finally failed. Higher layers register
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
