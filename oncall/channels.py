"""How each notification channel delivers. A sender raises on failure; the outbox records and retries."""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.mime.image import MIMEImage

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
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    if payload.get("html"):
        message.attach_alternative(payload["html"], "text/html")
    images = payload.get("inline_images") or {}
    if images:
        # HTML referring to <img src="cid:NAME">: the images travel in a multipart/related part
        message.mixed_subtype = "related"
        for cid, encoded in images.items():
            image = MIMEImage(base64.b64decode(encoded), "png")
            image.add_header("Content-ID", f"<{cid}>")
            image.add_header("Content-Disposition", "inline", filename=f"{cid}.png")
            message.attach(image)
    message.send(fail_silently=False)


SENDERS: dict[str, Callable[[Notification], None]] = {Notification.Channel.EMAIL: send_email}


def register_sender(channel: str, sender: Callable[[Notification], None]) -> None:
    """Later layers (chat, webhooks) plug their delivery in here."""
    SENDERS[channel] = sender
