"""Status-update reminders: one per overdue period, through the notification outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents.models import Incident, IncidentEvent
from oncall.selectors import team_managers
from oncall.services import notification_enqueue


def incident_url(incident: Incident) -> str:
    return f"{settings.FIREBREAK_BASE_URL}/admin/incidents/incident/{incident.pk}/change/"


def incident_remind_status_update(*, incident: Incident, last_update_at: datetime, cadence: timedelta) -> int:
    """Remind the commander and communications lead that an update is overdue: once per overdue period.

    Period k starts at last_update_at + k·cadence; the dedupe key carries the last update and k, so running
    the task again within one period sends nothing. Returns how many reminders were queued."""
    now = timezone.now()
    period = int((now - last_update_at) / cadence)
    if period < 1:
        return 0
    recipients = [user for user in (incident.commander, incident.comms_lead) if user is not None]
    if not recipients and incident.created_by is not None:
        recipients = [incident.created_by]
    if not recipients:
        recipients = [membership.user for membership in team_managers(team_id=incident.service.team_id)]
    minutes = int(cadence.total_seconds() // 60)
    queued = 0
    with transaction.atomic():
        for user in {user.pk: user for user in recipients}.values():
            _, created = notification_enqueue(
                dedupe_key=f"status-reminder:{incident.pk}:{last_update_at.timestamp():.0f}:{period}:{user.pk}",
                user=user,
                subject=f"[{incident.severity}] {incident.ref}: a status update is overdue",
                body=(
                    f"{incident.ref} {incident.title} ({incident.severity}, {incident.get_status_display()}) has had "
                    f"no status update since {last_update_at:%Y-%m-%d %H:%M} UTC. {incident.severity} incidents are "
                    f"updated every {minutes} minutes.\n\nPost an update: {incident_url(incident)}\n"
                ),
                payload={"incident": incident.ref, "kind": "status_update_reminder", "period": period},
            )
            queued += int(created)
        if queued:
            IncidentEvent.objects.create(
                incident=incident,
                kind=IncidentEvent.Kind.REMINDER_SENT,
                at=now,
                message=f"Status update overdue (period {period}); {queued} reminder(s) sent",
                data={"period": period, "last_update_at": last_update_at.isoformat()},
            )
    return queued
