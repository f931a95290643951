from django.apps import AppConfig


class PostmortemsConfig(AppConfig):
    name = "postmortems"

    def ready(self) -> None:
        from incidents.services import register_close_guard, register_transition_listener
        from oncall import roles
        from postmortems import services

        register_transition_listener(services.on_incident_transition)
        register_close_guard(services.require_published_postmortem)

        roles.grant(roles.MANAGERS, "postmortems", "*")
        # Responders write postmortems (object rules in postmortems.selectors: own or responded to) and edit
        # their own action items; reading published postmortems needs only a sign-in.
        roles.grant(
            roles.RESPONDERS,
            "postmortems",
            "view_postmortem",
            "add_postmortem",
            "change_postmortem",
            "view_contributingfactor",
            "add_contributingfactor",
            "change_contributingfactor",
            "delete_contributingfactor",
            "view_actionitem",
            "add_actionitem",
            "change_actionitem",
            "view_postmortemreview",
            "view_postmortemrevision",
            "view_postmortemevent",
        )
