"""How each notification channel delivers. A sender raises on failure; the outbox records and retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.request
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


def webhook_signature(body: bytes) -> str:
    secret = settings.FIREBREAK_WEBHOOK_SECRET.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def send_webhook(notification: Notification) -> None:
    """POST the message as JSON to the contact method's URL, signed with HMAC-SHA256 over the raw body in
    `X-Firebreak-Signature` (`sha256=<hex>`, key FIREBREAK_WEBHOOK_SECRET). Any non-2xx answer is a failure
    (retried with backoff)."""
    if not settings.FIREBREAK_WEBHOOK_SECRET:
        raise DeliveryError("FIREBREAK_WEBHOOK_SECRET is not set: webhook notifications cannot be signed")
    if not notification.address.startswith(("https://", "http://")):
        raise DeliveryError(f"{notification.address!r} is not an http(s) URL")
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    body = json.dumps(
        {
            "id": notification.dedupe_key,
            "subject": notification.subject,
            "text": notification.body,
            "data": {key: value for key, value in payload.items() if key not in ("html", "inline_images")},
        },
        sort_keys=True,
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        notification.address,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Firebreak",
            "X-Firebreak-Signature": webhook_signature(body),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise ConnectionError(f"webhook answered {response.status}")


SENDERS: dict[str, Callable[[Notification], None]] = {
    Notification.Channel.EMAIL: send_email,
    Notification.Channel.WEBHOOK: send_webhook,
}


def register_sender(channel: str, sender: Callable[[Notification], None]) -> None:
    """Later layers (chat, webhooks) plug their delivery in here."""
    SENDERS[channel] = sender
