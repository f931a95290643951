"""Writes of the Slack integration: each signed request is accepted once."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.chatops.signing import MAX_AGE_SECONDS, BadSignature
from incidents.models import SlackRequest


def slack_request_accept(*, signature: str) -> SlackRequest:
    """Record a verified request's signature, or raise BadSignature if it was accepted before.

    A replay within the five-minute window carries the same signature: the unique index refuses its row, so
    of two copies, sent one after the other or at the same moment to different processes, exactly one is
    accepted (the second INSERT waits for the first to commit, then fails). A table rather than the shared
    cache: the cache may be per process (CACHE_URL=locmem://) and is skipped when unreachable, and a replay
    guard must fail closed. Rows older than twice the window, which no valid request can match, are pruned."""
    now = timezone.now()
    try:
        with transaction.atomic():
            accepted = SlackRequest.objects.create(signature=signature, received_at=now)
    except IntegrityError as exc:
        raise BadSignature("this request was already received (a replay)") from exc
    SlackRequest.objects.filter(received_at__lt=now - timedelta(seconds=2 * MAX_AGE_SECONDS)).delete()
    return accepted
