"""How each notification channel delivers. A sender raises on failure; the outbox records and retries."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from oncall.models import Notification


class DeliveryError(Exception):
    """A delivery that cannot succeed by retrying (no address, unknown channel)."""


def send_email(notification: Notification) -> None:
    if not notification.address:
        raise DeliveryError("no e-mail address for this user (add an e-mail contact method)")
    message = EmailMultiAlternatives(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.address],
        headers={"X-Firebreak-Notification": notification.dedupe_key},
    )
    html = notification.payload.get("html") if isinstance(notification.payload, dict) else None
    if html:
        message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


SENDERS: dict[str, Callable[[Notification], None]] = {Notification.Channel.EMAIL: send_email}


def register_sender(channel: str, sender: Callable[[Notification], None]) -> None:
    """Later layers (chat, webhooks) plug their delivery in here."""
    SENDERS[channel] = sender
