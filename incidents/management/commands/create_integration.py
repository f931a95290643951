from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from incidents.alerting import selectors, services
from incidents.models import Integration, Service


class Command(BaseCommand):
    help = (
        "Create an alert integration for a service and print where to send alerts: the URL (alertmanager, "
        "generic) or the routing key (pagerduty_v2). The key is shown only now; regenerate it in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True, help="service slug")
        parser.add_argument("--kind", required=True, choices=Integration.Kind.values)
        parser.add_argument("--name", default="", help="defaults to the kind")
        parser.add_argument("--rate-limit", type=int, default=600, help="requests per minute (default 600)")
        parser.add_argument("--no-auto-resolve", action="store_true", help="keep incidents open when alerts resolve")

    def handle(self, *args, **options):
        service = Service.objects.filter(slug=options["service"]).first()
        if service is None:
            raise CommandError(f"No service with slug {options['service']!r}.")
        try:
            integration, key = services.integration_create(
                service=service,
                kind=options["kind"],
                name=options["name"],
                auto_resolve=not options["no_auto_resolve"],
                rate_limit_per_minute=options["rate_limit"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items())) from exc
        endpoint = selectors.integration_endpoint(integration=integration, key=key)
        if integration.kind == Integration.Kind.PAGERDUTY_V2:
            self.stdout.write(f"routing key: {key}")
            self.stdout.write(f"events URL:  {endpoint}")
        else:
            self.stdout.write(endpoint)
