from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"

    def ready(self) -> None:
        from oncall import roles

        roles.grant(roles.MANAGERS, "metrics", "*")
