from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"

    def ready(self) -> None:
        from incidents import response
        from incidents.chatops.sender import send_slack
        from incidents.services import escalation, register_transition_listener
        from oncall import providers, roles
        from oncall.channels import register_sender
        from oncall.models import Notification
        from oncall.services import register_failure_listener

        register_transition_listener(escalation.on_incident_transition)
        register_transition_listener(response.on_incident_transition)
        register_failure_listener(escalation.on_notification_failed)
        register_sender(Notification.Channel.SLACK, send_slack)
        providers.register_open_incidents_provider(_open_incidents)

        roles.grant(roles.MANAGERS, "incidents", "*")
        roles.grant(
            roles.RESPONDERS,
            "incidents",
            "view_incident",
            "add_incident",
            "change_incident",
            "view_incidentevent",
            "view_incidentroleassignment",
            "view_statusupdate",
            "add_statusupdate",
            "view_service",
            "view_severitypolicy",
            "view_runbook",
            "add_runbook",
            "change_runbook",
            "view_runbookversion",
            "view_incidentrunbook",
            "view_automationaction",
            "view_automationrule",
            "view_automationrun",
            "add_automationrun",
            "view_subscription",
            "add_subscription",
            "view_gameday",
        )


def _open_incidents(team_id: int):
    """Open incidents of a team's services, for handoff messages (oncall cannot import incidents)."""
    from django.conf import settings

    from incidents.models import Incident
    from oncall.providers import OpenIncident

    rows = (
        Incident.objects.filter(service__team_id=team_id, status__in=Incident.OPEN_STATUSES)
        .order_by("severity", "declared_at")
        .values_list("pk", "ref", "title", "severity")
    )
    return [
        OpenIncident(
            ref=ref,
            title=title,
            severity=severity,
            url=f"{settings.FIREBREAK_BASE_URL}/admin/incidents/incident/{pk}/change/",
        )
        for pk, ref, title, severity in rows
    ]
