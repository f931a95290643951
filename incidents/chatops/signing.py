"""Slack's request signing, v0: HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the app's signing secret."""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE_SECONDS = 5 * 60


class BadSignature(Exception):
    pass


def slack_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(*, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None) -> None:
    """Raise BadSignature unless the request was signed with `secret` less than five minutes ago."""
    if not secret:
        raise BadSignature("Slack commands are not configured (SLACK_SIGNING_SECRET is unset)")
    if not timestamp or not signature:
        raise BadSignature("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise BadSignature("X-Slack-Request-Timestamp is not a number") from exc
    now = time.time() if now is None else now
    if abs(now - sent) > MAX_AGE_SECONDS:
        raise BadSignature("the request timestamp is more than five minutes away from now")
    expected = slack_signature(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BadSignature("the signature does not match")
