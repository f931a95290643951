from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"

    def ready(self) -> None:
        from oncall import roles

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
        )
