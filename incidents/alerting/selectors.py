"""Reads for alert ingestion: finding an integration by its key, open incidents of groups, due alerts."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform

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
    """The open incident alerts of this group already belong to (one per group). One query: it runs for
    every new alert, so the id lookup is a subquery rather than a second round trip (bench/RESULTS.md)."""
    latest = (
        Alert.objects.filter(
            integration=integration,
            group_key=group_key,
            incident__isnull=False,
            incident__status__in=Incident.OPEN_STATUSES,
        )
        .order_by("-received_at")
        .values("incident_id")[:1]
    )
    return Incident.objects.filter(pk=Subquery(latest)).order_by().first()


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


@dataclass(frozen=True)
class AlertNoise:
    integration_id: int
    integration: str
    service: str
    alertname: str
    alerts: int  # distinct alerts (rows)
    received: int  # notifications received, repeats included
    deduplicated: int  # repeats folded into an existing alert
    suppressed: int  # maintenance, flap or informational
    flaps: int  # resolved within the flap delay
    without_incident: int  # led to no incident, for any reason
    acknowledged: int  # led to an incident someone acknowledged that was not a false positive


def alert_noise(*, since: datetime, until: datetime | None = None, limit: int = 50) -> list[AlertNoise]:
    """Per integration and alert name, noisiest first: one aggregate query (the metrics issue builds on it)."""
    rows = Alert.objects.filter(received_at__gte=since)
    if until is not None:
        rows = rows.filter(received_at__lt=until)
    rows = (
        rows.annotate(alertname=KeyTextTransform("alertname", "labels"))
        .values("integration_id", "alertname")
        .annotate(
            integration_name=F("integration__name"),
            service_name=F("integration__service__name"),
            n_alerts=Count("id"),
            n_received=Sum("repeat_count"),
            n_suppressed=Count("id", filter=~Q(suppressed="")),
            n_flaps=Count("id", filter=Q(suppressed=Alert.Suppressed.FLAP)),
            n_without_incident=Count("id", filter=Q(incident__isnull=True)),
            n_acknowledged=Count(
                "id",
                filter=Q(incident__acknowledged_at__isnull=False) & ~Q(incident__closure_reason="false_positive"),
            ),
        )
        .order_by("-n_received", "integration_id", "alertname")[:limit]
    )
    return [
        AlertNoise(
            integration_id=row["integration_id"],
            integration=row["integration_name"],
            service=row["service_name"],
            alertname=row["alertname"] or "",
            alerts=row["n_alerts"],
            received=row["n_received"],
            deduplicated=row["n_received"] - row["n_alerts"],
            suppressed=row["n_suppressed"],
            flaps=row["n_flaps"],
            without_incident=row["n_without_incident"],
            acknowledged=row["n_acknowledged"],
        )
        for row in rows
    ]
