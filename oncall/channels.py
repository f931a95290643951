"""How each notification channel delivers. A sender raises on failure; the outbox records and retries.

A sender raises DeliveryError for what retrying cannot fix (no address, a refused destination, a 4xx answer)
and one of RETRYABLE_ERRORS for a transport failure (connection, timeout, SMTP error, a 5xx or 429 answer):
only those are retried. Anything else is a bug and fails the notification at once (oncall/services).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import smtplib
from collections.abc import Callable
from email.mime.image import MIMEImage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives

from oncall import egress
from oncall.models import Notification


class DeliveryError(Exception):
    """A delivery that cannot succeed by retrying (no address, unknown channel, refused destination)."""


class TransientDeliveryError(Exception):
    """The peer answered that it cannot take the message now (HTTP 5xx or 429): retried with backoff."""


# Transport failures worth another attempt. OSError covers connection errors, timeouts, TLS errors and
# requests' exceptions; smtplib.SMTPException is one too, named for the reader.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    TransientDeliveryError,
    smtplib.SMTPException,
    OSError,
    http.client.HTTPException,
)


def raise_for_answer(status: int, body: str, *, peer: str) -> None:
    """Classify an HTTP answer: 2xx is delivered, 5xx and 429 are retried, anything else (a redirect, which
    is never followed, or a 4xx) fails for good."""
    if 200 <= status < 300:
        return
    if status >= 500 or status == 429:
        raise TransientDeliveryError(f"{peer} answered HTTP {status}: {body[:200]}")
    if 300 <= status < 400:
        raise DeliveryError(f"{peer} answered HTTP {status} (redirects are not followed)")
    raise DeliveryError(f"{peer} answered HTTP {status}: {body[:200]}")


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


def webhook_destination(address: str) -> egress.Destination:
    """Vet a webhook contact method's URL with the same egress rules as automated actions and Slack: the host
    on FIREBREAK_WEBHOOK_ALLOWED_HOSTS, every resolved address public unless its network is on
    FIREBREAK_AUTOMATION_ALLOWED_NETWORKS. Raises EgressRefused."""
    return egress.check_destination(
        address,
        allowed_hosts=settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS,
        allowed_networks=settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS,
    )


def validate_contact_address(*, kind: str, address: str) -> None:
    """The rule a contact method's address must pass when it is saved (admin, API): raises ValidationError
    naming `address`. Webhook URLs are checked again when each message is sent (DNS may have changed)."""
    if kind == Notification.Channel.WEBHOOK:
        try:
            webhook_destination(address)
        except egress.EgressRefused as exc:
            raise ValidationError({"address": [f"This webhook URL is not allowed: {exc}."]}) from exc


def send_webhook(notification: Notification) -> None:
    """POST the message as JSON to the contact method's URL, signed with HMAC-SHA256 over the raw body in
    `X-Firebreak-Signature` (`sha256=<hex>`, key FIREBREAK_WEBHOOK_SECRET). The URL passes the egress rules
    at send time and the connection goes to the vetted address; redirects are not followed. A 5xx or 429
    answer is retried with backoff; any other non-2xx answer fails."""
    if not settings.FIREBREAK_WEBHOOK_SECRET:
        raise DeliveryError("FIREBREAK_WEBHOOK_SECRET is not set: webhook notifications cannot be signed")
    try:
        destination = webhook_destination(notification.address)
    except egress.EgressRefused as exc:
        raise DeliveryError(f"webhook refused: {exc}") from exc
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
    response = egress.send(
        destination,
        method="POST",
        body=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Firebreak",
            "X-Firebreak-Signature": webhook_signature(body),
        },
        timeout=10,
    )
    raise_for_answer(response.status, response.body, peer="the webhook")


SENDERS: dict[str, Callable[[Notification], None]] = {
    Notification.Channel.EMAIL: send_email,
    Notification.Channel.WEBHOOK: send_webhook,
}


def register_sender(channel: str, sender: Callable[[Notification], None]) -> None:
    """Later layers (chat, webhooks) plug their delivery in here."""
    SENDERS[channel] = sender
