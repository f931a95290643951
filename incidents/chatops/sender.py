"""The outbox's Slack sender: posts a message to an incoming-webhook URL.

A notification's address is either the webhook URL itself (incident news of a team) or a team's
`chat_channel` (handoff news from oncall), looked up in TeamChatSettings. Direct messages to a member ID
need a bot token and are not supported: they fail visibly in the outbox.
"""

from __future__ import annotations

import json

from django.conf import settings

from incidents.models import TeamChatSettings
from oncall import egress
from oncall.channels import DeliveryError, raise_for_answer
from oncall.models import Notification


def _webhook_url(address: str) -> str:
    if address.startswith(("https://", "http://")):
        return address
    chat = TeamChatSettings.objects.filter(team__chat_channel=address).first() if address else None
    if chat is None:
        raise DeliveryError(
            f"no Slack incoming webhook for {address or 'this message'!r} (set one under Team chat settings)"
        )
    return chat.slack_webhook_url


def send_slack(notification: Notification) -> None:
    url = _webhook_url(notification.address)
    try:
        destination = egress.check_destination(
            url,
            allowed_hosts=settings.FIREBREAK_SLACK_WEBHOOK_HOSTS,
            allowed_networks=settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS,
        )
    except egress.EgressRefused as exc:
        raise DeliveryError(f"Slack webhook refused: {exc}") from exc
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    message = {"text": payload.get("text") or notification.body or notification.subject}
    if payload.get("blocks"):
        message["blocks"] = payload["blocks"]
    response = egress.send(
        destination,
        method="POST",
        body=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    raise_for_answer(response.status, response.body, peer="Slack")  # 5xx and 429 are retried
