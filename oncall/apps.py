from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "On-call"

    def ready(self) -> None:
        from oncall import roles

        for app_label in ("oncall", "auth", "authtoken", "django_celery_beat"):
            roles.grant(roles.MANAGERS, app_label, "*")
        roles.grant(roles.MANAGERS, "admin", "view_logentry")  # the audit trail (oncall/admin_audit.py)
        roles.grant(roles.RESPONDERS, "oncall", "view_team", "view_teammembership", "view_contactmethod")
        roles.grant(roles.RESPONDERS, "oncall", "add_contactmethod", "change_contactmethod", "delete_contactmethod")
        roles.grant(
            roles.RESPONDERS,
            "oncall",
            "view_rotation",
            "view_rotationmember",
            "view_shift",
            "view_override",
            "add_override",  # a member takes a shift for themselves (the services check who for, and which rotation)
            "view_swap",
            "add_swap",
            "view_unavailability",
            "add_unavailability",
            "view_scheduleissue",
            "view_handoff",
            "view_escalationpolicy",
            "view_escalationstep",
            "view_escalationtarget",
            "view_holidaycalendar",
            "view_holiday",
        )
        post_migrate.connect(roles.sync_group_permissions, dispatch_uid="oncall.sync_group_permissions")
