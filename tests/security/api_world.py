"""A database that looks like production for API-wide tests: `seed_demo` plus what it leaves out (alerts, an
integration, an override, a swap, an unavailability, a subscription), and the ids to put in each URL.

Used by tests/security/test_request_bodies.py and tests/fuzz/test_api_schema.py. The caller points
settings.BASE_DIR at a temporary directory, so seed_demo writes its logins file there, not under var/.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from incidents import stakeholders
from incidents.alerting import services as alerting_services
from incidents.models import Incident, Service
from oncall import services as oncall_services
from oncall.models import Rotation, Shift
from postmortems.models import ActionItem, Postmortem


def seed_api_world() -> dict[str, object]:
    """Seed, and return the value for each path parameter, keyed by the URL's first segment after /api/v1/."""
    call_command("seed_demo", stdout=_Null())
    User = get_user_model()
    manager, responder = User.objects.get(username="manager"), User.objects.get(username="responder")
    checkout = Service.objects.get(slug="checkout")

    integration, key = alerting_services.integration_create(service=checkout, kind="generic", name="monitoring")
    client = Client()
    for body in (
        {"title": "Checkout error rate above 5%", "dedup_key": "checkout-5xx", "severity": "critical"},
        {"title": "Disk 80% full on db-2", "dedup_key": "disk-db-2", "severity": "info", "labels": {"host": "db-2"}},
    ):
        response = client.post(f"/hooks/generic/{key}/", body, content_type="application/json")
        assert response.status_code == 200, response.content

    rotation = Rotation.objects.get(name="Payments primary")
    now = timezone.now()
    future = list(
        Shift.objects.filter(rotation=rotation, period__startswith__gt=now + timedelta(days=15), user__isnull=False)
        .select_related("user")
        .order_by("slot")
    )
    first = future[0]
    second = next(shift for shift in future if shift.user_id != first.user_id)
    swap = oncall_services.swap_request(
        rotation=rotation,
        requester=first.user,
        counterparty=second.user,
        requester_slot=first.slot,
        counterparty_slot=second.slot,
    )
    override = oncall_services.override_create(
        rotation=rotation,
        user=manager,
        start=second.period.lower + timedelta(hours=2),
        end=second.period.lower + timedelta(hours=6),
        reason="covering a dentist appointment",
        created_by=manager,
    )
    vacation = oncall_services.unavailability_create(
        user=responder, start=now + timedelta(days=80), end=now + timedelta(days=85), note="holiday"
    )
    subscription = stakeholders.subscription_create(actor=responder, service=checkout, user=responder)
    member = rotation.members.select_related("user").order_by("position").last()

    return {
        "incidents": Incident.objects.filter(status=Incident.Status.TRIGGERED).order_by("id").first().ref,
        "services": checkout.slug,
        "severities": "P1",
        "teams": rotation.team.slug,
        "rotations": rotation.pk,
        "username": member.user.username,
        "shifts": first.pk,
        "overrides": override.pk,
        "swaps": swap.pk,
        "unavailability": vacation.pk,
        "escalation-policies": checkout.escalation_policy_id,
        "alerts": integration.alerts.order_by("id").first().pk,
        "integrations": integration.pk,
        "subscriptions": subscription.pk,
        "postmortems": Postmortem.objects.filter(status=Postmortem.Status.DRAFT).order_by("id").first().pk,
        "action-items": ActionItem.objects.order_by("id").first().pk,
    }


class _Null:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
