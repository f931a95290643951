from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"

    def ready(self) -> None:
        from incidents import response
        from incidents.chatops.sender import send_slack
        from incidents.services import register_transition_listener
        from oncall import roles
        from oncall.channels import register_sender
        from oncall.models import Notification

        register_transition_listener(response.on_incident_transition)
        register_sender(Notification.Channel.SLACK, send_slack)

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
