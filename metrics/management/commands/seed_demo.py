"""Demo data for `make run`: two teams, five services, two logins and ~60 incidents over three months.

It lives in the top layer so it can seed every app. Running it again changes nothing and prints the logins.
"""

import random
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Incident, IncidentEvent, Service, StatusUpdate
from oncall.models import ContactMethod, Team, TeamMembership
from postmortems import services as postmortem_services
from postmortems.models import ActionItem, Postmortem

TEAMS = [
    ("Payments", "payments", "Europe/Berlin", [("checkout", "Checkout"), ("billing", "Billing"), ("ledger", "Ledger")]),
    ("Platform", "platform", "America/New_York", [("api-gateway", "API gateway"), ("search", "Search")]),
]
PEOPLE = [
    # username, first name, group, team slug, role
    ("manager", "Morgan", "Managers", "payments", "manager"),
    ("responder", "Robin", "Responders", "payments", "member"),
    ("avery", "Avery", "Responders", "payments", "member"),
    ("sam", "Sam", "Responders", "platform", "member"),
    ("kai", "Kai", "Responders", "platform", "member"),
    ("jo", "Jo", "Managers", "platform", "manager"),
]
TITLES = [
    "Elevated 5xx on {svc}",
    "{svc} latency p99 above 2 s",
    "{svc} workers crash-looping after deploy",
    "Database connection pool exhausted on {svc}",
    "Certificate expiry broke {svc} callbacks",
    "{svc} queue backlog growing",
    "Partial outage of {svc} in one region",
    "Memory leak in {svc} pods",
    "Third-party dependency timeouts affecting {svc}",
    "Stale cache served by {svc}",
]
UPDATES = [
    "Investigating; the on-call engineer is looking at the dashboards.",
    "Cause identified: a configuration change; rolling it back.",
    "Rollback complete, error rates returning to normal. Monitoring.",
    "Customers may see slow responses; a workaround is in place.",
]
LOGINS_FILE = "demo-logins.txt"


class Command(BaseCommand):
    help = "Seed demo data (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        var = Path(settings.BASE_DIR) / "var"
        var.mkdir(exist_ok=True)
        logins = self._logins(var / LOGINS_FILE)
        with transaction.atomic():
            users = self._people(logins)
            if not Incident.objects.exists():
                services = self._teams_and_services(users)
                self._oncall(users)
                self._incidents(services, users)
                self._postmortems(users)
                self.stdout.write(self.style.SUCCESS(f"Seeded {Incident.objects.count()} demo incidents."))
            else:
                self.stdout.write("Demo data already present; nothing seeded.")
        self.stdout.write("Demo logins (also in var/demo-logins.txt):")
        for username in ("manager", "responder"):
            self.stdout.write(f"  {username} / {logins[username]}")

    def _logins(self, path: Path) -> dict[str, str]:
        logins: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                username, _, password = line.partition(" ")
                if username and password:
                    logins[username] = password
        for username, *_ in PEOPLE:
            logins.setdefault(username, secrets.token_urlsafe(9))
        path.write_text("".join(f"{user} {password}\n" for user, password in logins.items()))
        path.chmod(0o600)
        return logins

    def _people(self, logins: dict[str, str]) -> dict[str, object]:
        User = get_user_model()
        users = {}
        for username, first_name, group, _, _ in PEOPLE:
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first_name, "email": f"{username}@firebreak.localhost", "is_staff": True},
            )
            if not user.check_password(logins[username]):
                user.set_password(logins[username])
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=group))
            ContactMethod.objects.get_or_create(user=user, kind=ContactMethod.Kind.EMAIL, address=user.email)
            users[username] = user
        return users

    def _teams_and_services(self, users) -> list[Service]:
        services = []
        for name, slug, tz, team_services in TEAMS:
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name, "timezone": tz})
            for service_slug, service_name in team_services:
                service, _ = Service.objects.get_or_create(
                    slug=service_slug, defaults={"name": service_name, "team": team}
                )
                services.append(service)
        for username, _, _, team_slug, role in PEOPLE:
            TeamMembership.objects.get_or_create(
                team=Team.objects.get(slug=team_slug), user=users[username], defaults={"role": role}
            )
        return services

    def _oncall(self, users) -> None:
        """A weekly primary rotation per team (handoff Monday 09:00 local) and a two-step escalation policy:
        the current holder for 5 minutes, then the team's managers; every service of the team uses it."""
        from datetime import time

        from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Rotation, RotationMember
        from oncall.services import rotation_generate

        today = timezone.now().date()
        monday = today - timedelta(days=today.weekday() + 14)
        for team in Team.objects.all():
            rotation, _ = Rotation.objects.get_or_create(
                team=team,
                name=f"{team.name} primary",
                defaults={
                    "layer": Rotation.Layer.PRIMARY,
                    "timezone": team.timezone,
                    "unit": Rotation.Unit.WEEKLY,
                    "count": 1,
                    "handoff_time": time(9, 0),
                    "handoff_weekday": 0,
                    "anchor_date": monday,
                },
            )
            members = [m.user for m in team.memberships.select_related("user").order_by("role", "user__username")]
            for position, user in enumerate(members):
                RotationMember.objects.get_or_create(rotation=rotation, user=user, defaults={"position": position})
            rotation_generate(rotation=rotation)
            policy, _ = EscalationPolicy.objects.get_or_create(team=team, name="Default", defaults={"repeat": 1})
            first, _ = EscalationStep.objects.get_or_create(policy=policy, position=0, defaults={"delay_minutes": 5})
            EscalationTarget.objects.get_or_create(step=first, kind="rotation_current", rotation=rotation)
            second, _ = EscalationStep.objects.get_or_create(policy=policy, position=1, defaults={"delay_minutes": 15})
            EscalationTarget.objects.get_or_create(step=second, kind="team_managers")
            team.services.update(escalation_policy=policy)

    def _incidents(self, services: list[Service], users) -> None:
        rng = random.Random(2026)  # noqa: S311 - demo data, not security
        now = timezone.now().replace(second=0, microsecond=0)
        rows = []
        for index in range(55):
            declared = now - timedelta(days=rng.uniform(1.5, 90), minutes=rng.randint(0, 600))
            detected = declared - timedelta(minutes=rng.randint(0, 10))
            started = detected - timedelta(minutes=rng.choice([0, 2, 5, 12, 30, 75]))
            acknowledged = declared + timedelta(minutes=rng.choice([1, 2, 3, 5, 8, 14, 25]))
            mitigated = acknowledged + timedelta(minutes=rng.randint(5, 180))
            resolved = mitigated + timedelta(minutes=rng.randint(0, 240))
            service = rng.choice(services)
            severity = rng.choices(["P0", "P1", "P2", "P3"], weights=[1, 3, 6, 5])[0]
            closure = ""
            closed = resolved + timedelta(days=rng.randint(1, 6))
            if index % 11 == 5:
                closure = rng.choice(["false_positive", "cancelled"])
            elif index % 3 == 0 or closed > now:
                closed = None  # resolved, not yet closed
            row = {
                "title": rng.choice(TITLES).format(svc=service.name),
                "severity": severity,
                "service": service.slug,
                "started_at": started.isoformat(),
                "detected_at": detected.isoformat(),
                "declared_at": declared.isoformat(),
                "acknowledged_at": acknowledged.isoformat(),
                "mitigated_at": "" if closure else mitigated.isoformat(),
                "resolved_at": "" if closure else resolved.isoformat(),
                "closed_at": closed.isoformat() if closed else "",
                "is_practice": "true" if index % 17 == 3 else "false",
                "closure_reason": closure,
            }
            if closure:
                row["acknowledged_at"] = ""
                row["closed_at"] = (declared + timedelta(minutes=20)).isoformat()
            rows.append(row)
        incident_services.incidents_import(rows=rows, source_name="demo seed")
        responders = [users[name] for name in ("responder", "avery", "sam", "kai")]
        updates, events = [], []
        for incident in Incident.objects.filter(source=Incident.Source.IMPORT):
            commander = rng.choice(responders)
            Incident.objects.filter(pk=incident.pk).update(commander=commander)
            end = incident.resolved_at or incident.closed_at
            for step, message in enumerate(UPDATES[: rng.randint(1, 4)]):
                at = incident.declared_at + timedelta(minutes=15 + 25 * step)
                if at >= end:
                    break
                updates.append(StatusUpdate(incident=incident, at=at, author=commander, message=message))
                events.append(
                    IncidentEvent(
                        incident=incident,
                        at=at,
                        kind=IncidentEvent.Kind.STATUS_UPDATE,
                        actor=commander,
                        message=message,
                    )
                )
        StatusUpdate.objects.bulk_create(updates)
        IncidentEvent.objects.bulk_create(events)

        # a few open incidents, worked through the same services responders use
        manager, responder = users["manager"], users["responder"]
        open_ones = [
            ("Checkout payments failing for card type X", "P1", "checkout", "acknowledged"),
            ("Search results missing recent documents", "P2", "search", "triggered"),
            ("Billing invoices delayed", "P3", "billing", "mitigated"),
            ("API gateway returns 502 for some clients", "P0", "api-gateway", "triggered"),
            ("Ledger reconciliation job slow", "P2", "ledger", "acknowledged"),
        ]
        by_slug = {service.slug: service for service in services}
        for title, severity, slug, state in open_ones:
            incident = incident_services.incident_declare(
                title=title, severity=severity, service=by_slug[slug], actor=manager
            )
            if state in ("acknowledged", "mitigated"):
                incident = incident_services.incident_acknowledge(incident=incident, actor=responder)
                incident_services.status_update_create(
                    incident=incident, author=responder, message="Investigating; first findings soon."
                )
            if state == "mitigated":
                incident_services.incident_mitigate(incident=incident, actor=responder)

    def _postmortems(self, users) -> None:
        """Four postmortems: two drafts, one in review, one published with done, open and overdue items."""
        candidates = list(
            Incident.objects.filter(
                severity__in=["P0", "P1", "P2"], resolved_at__isnull=False, is_practice=False, closure_reason=""
            )
            .select_related("service__team")
            .order_by("-resolved_at")[:4]
        )
        manager, jo = users["manager"], users["jo"]
        sections = {
            "summary": "Card payments failed for part of the traffic after a configuration change.",
            "impact": "About 4% of checkout attempts failed for 38 minutes; no data was lost.",
            "detection": "The error-rate alert fired 6 minutes after impact began; the threshold was set high.",
            "trigger": "A configuration change lowered the connection limit of the payment client.",
            "resolution": "The configuration change was rolled back and the pool recovered.",
            "went_well": "The rollback took 4 minutes once the change was identified.",
            "went_badly": "The deploying engineer should have seen the warning in the logs.",
            "got_lucky": "Traffic was low because it was early morning.",
            "lessons": "Configuration changes need the same canary as code changes.",
        }
        for index, incident in enumerate(candidates):
            postmortem = postmortem_services.postmortem_draft_for_incident(incident=incident)
            if postmortem is None:
                continue
            owner = incident.commander or users["responder"]
            if postmortem.owner_id is None:
                postmortem = postmortem_services.postmortem_update(postmortem=postmortem, actor=manager, owner=owner)
            if index == 0:
                continue  # a fresh draft, as the resolve left it
            postmortem_services.postmortem_update(postmortem=postmortem, actor=owner, **sections)
            postmortem_services.contributing_factor_save(
                postmortem=postmortem,
                actor=owner,
                category="configuration",
                description="The connection limit had no validation or canary before rollout.",
            )
            postmortem_services.contributing_factor_save(
                postmortem=postmortem,
                actor=owner,
                category="monitoring_gap",
                description="The root cause alert on pool saturation did not exist.",
            )
            today = timezone.localdate()
            items = [
                postmortem_services.action_item_create(
                    postmortem=postmortem,
                    actor=owner,
                    title="Validate connection limits in CI",
                    owner=owner,
                    priority=ActionItem.Priority.PRIORITY,
                    kind=ActionItem.Kind.PREVENT,
                    due_on=today - timedelta(days=3),
                    tracker_url="https://tracker.example/OPS-101",
                ),
                postmortem_services.action_item_create(
                    postmortem=postmortem,
                    actor=owner,
                    title="Alert on pool saturation above 80%",
                    owner=owner,
                    priority=ActionItem.Priority.PRIORITY,
                    kind=ActionItem.Kind.DETECT,
                    due_on=today + timedelta(days=1),
                ),
                postmortem_services.action_item_create(
                    postmortem=postmortem,
                    actor=owner,
                    title="Canary for configuration changes",
                    owner=owner,
                    priority=ActionItem.Priority.IMPROVEMENT,
                    kind=ActionItem.Kind.MITIGATE,
                ),
            ]
            if index == 1:
                continue  # a draft with warnings to fix
            postmortem_services.postmortem_submit(postmortem=postmortem, actor=owner)
            if index == 2:
                continue  # waiting for review
            reviewer = jo if owner.pk == manager.pk else manager
            postmortem_services.postmortem_approve(postmortem=postmortem, reviewer=reviewer, comment="Clear, thanks.")
            postmortem_services.postmortem_publish(postmortem=postmortem, actor=reviewer)
            postmortem_services.action_item_set_status(item=items[1], actor=owner, status=ActionItem.Status.DONE)
        self.stdout.write(f"Seeded {Postmortem.objects.count()} demo postmortems.")
