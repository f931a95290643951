"""Incident news for the team's Slack channel, sent through the outbox (one message per event)."""

from __future__ import annotations

from incidents.models import Incident, IncidentEvent, StatusUpdate, TeamChatSettings
from oncall.models import Notification
from oncall.services import notification_enqueue

POSTED_KINDS = {
    IncidentEvent.Kind.DECLARED: "declared",
    IncidentEvent.Kind.ACKNOWLEDGED: "acknowledged",
    IncidentEvent.Kind.RESOLVED: "resolved",
    IncidentEvent.Kind.STATUS_UPDATE: "status update",
}


def practice_prefix(incident: Incident) -> str:
    return "[PRACTICE] " if incident.is_practice else ""


def news_text(*, incident: Incident, kind: str, update: StatusUpdate | None = None) -> str:
    head = (
        f"{practice_prefix(incident)}*{incident.ref}* ({incident.severity}, {incident.service.name}) {incident.title}"
    )
    if kind == IncidentEvent.Kind.DECLARED:
        text = f":rotating_light: Declared: {head}"
        if incident.channel:
            text += f"\nJoin the incident channel #{incident.channel}"
        return text
    if kind == IncidentEvent.Kind.STATUS_UPDATE and update is not None:
        return f":memo: Status update on {head}\n{update.message}"
    return f"{POSTED_KINDS.get(kind, kind).capitalize()}: {head}"


def incident_post_news(*, incident: Incident, kind: str) -> Notification | None:
    """Called inside the incident's transaction; the outbox delivers after commit, once per event."""
    if kind not in POSTED_KINDS:
        return None
    chat = TeamChatSettings.objects.filter(team_id=incident.service.team_id).first()
    if chat is None:
        return None
    event = IncidentEvent.objects.filter(incident=incident, kind=kind).order_by("-id").first()
    update = None
    if kind == IncidentEvent.Kind.STATUS_UPDATE:
        update = StatusUpdate.objects.filter(incident=incident).order_by("-at", "-id").first()
    text = news_text(incident=incident, kind=kind, update=update)
    notification, _ = notification_enqueue(
        dedupe_key=f"incidents:chat:{incident.pk}:{kind}:{event.pk if event else 0}",
        user=None,
        channel=Notification.Channel.SLACK,
        address=chat.slack_webhook_url,
        subject=f"{practice_prefix(incident)}{incident.ref} {POSTED_KINDS[kind]}",
        body=text,
        payload={"text": text, "kind": "incident_news", "incident": incident.pk, "event": kind},
    )
    return notification
