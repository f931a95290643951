"""Reads for alert ingestion: finding an integration by its key, open incidents of groups, due alerts."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from incidents.models import Alert, Incident, Integration, MaintenanceWindow, Service

MAX_KEY_LENGTH = 128


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def integration_by_key(*, key: str, kind: str) -> Integration | None:
    """The integration of this kind whose key is `key`, else None.

    The database is searched by the key's SHA-256 digest (so lookup timing says nothing about the key) and
    the digest is then compared in constant time."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return None
    digest = key_digest(key)
    integration = Integration.objects.select_related("service").filter(key_digest=digest, kind=kind).first()
    if integration is None or not hmac.compare_digest(integration.key_digest, digest):
        return None
    return integration


def service_in_maintenance(*, service: Service, at: datetime) -> MaintenanceWindow | None:
    return MaintenanceWindow.objects.filter(service=service, starts_at__lte=at, ends_at__gt=at).first()


def group_open_incident(*, integration: Integration, group_key: str) -> Incident | None:
    """The open incident alerts of this group already belong to (one per group)."""
    incident_id = (
        Alert.objects.filter(
            integration=integration,
            group_key=group_key,
            incident__isnull=False,
            incident__status__in=Incident.OPEN_STATUSES,
        )
        .order_by("-received_at")
        .values_list("incident_id", flat=True)
        .first()
    )
    return Incident.objects.filter(pk=incident_id).first() if incident_id else None


def alerts_due_for_incident(*, now: datetime) -> list[int]:
    """Firing alerts whose flap delay has passed and still wait for an incident (the sweep's work list)."""
    return list(
        Alert.objects.filter(incident_due_at__lte=now, incident__isnull=True, status=Alert.Status.FIRING).values_list(
            "pk", flat=True
        )
    )


def alert_list() -> QuerySet[Alert]:
    """Alerts with everything a list row shows, in one query."""
    return Alert.objects.select_related("integration__service", "service", "incident").order_by("-received_at", "-id")


def integration_endpoint(*, integration: Integration, key: str) -> str:
    """Where the sender posts: the URL with the key for Alertmanager and generic, the shared events URL for
    PagerDuty v2 (the key travels as `routing_key`)."""
    base = settings.FIREBREAK_BASE_URL
    if integration.kind == Integration.Kind.PAGERDUTY_V2:
        return f"{base}/hooks/pagerduty/v2/enqueue"
    return f"{base}/hooks/{integration.kind}/{key}/"
