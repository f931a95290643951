"""Reads for alert ingestion: finding an integration by its key, open incidents of groups, due alerts."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet, Subquery

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


# Two steps in one statement. The month's alerts are grouped per (integration, alert name, incident) first; each
# group's incident is then read by primary key (a scalar subquery: PostgreSQL runs it per group, on the index).
# Joining every alert to incidents instead made PostgreSQL hash the whole incident table (a parallel scan of
# 1,000,000 rows for 84,000 alerts: bench/RESULTS.md, monthly report).
ALERT_NOISE_SQL = """
WITH per_incident AS MATERIALIZED (
    SELECT a.integration_id, a.labels ->> 'alertname' AS alertname, a.incident_id,
           count(*) AS alerts, sum(a.repeat_count) AS received,
           count(*) FILTER (WHERE a.suppressed <> '') AS suppressed,
           count(*) FILTER (WHERE a.suppressed = 'flap') AS flaps
    FROM incidents_alert a {team_join}
    WHERE a.received_at >= %(since)s {until} {team_filter}
    GROUP BY 1, 2, 3
), with_ack AS (
    SELECT p.*,
           CASE WHEN p.incident_id IS NULL THEN false ELSE (
               SELECT i.acknowledged_at IS NOT NULL AND i.closure_reason IS DISTINCT FROM 'false_positive'
               FROM incidents_incident i WHERE i.id = p.incident_id) END AS acknowledged
    FROM per_incident p
), per_name AS (
    SELECT integration_id, alertname, sum(alerts) AS alerts, sum(received) AS received,
           sum(suppressed) AS suppressed, sum(flaps) AS flaps,
           coalesce(sum(alerts) FILTER (WHERE incident_id IS NULL), 0) AS without_incident,
           coalesce(sum(alerts) FILTER (WHERE acknowledged), 0) AS acknowledged
    FROM with_ack
    GROUP BY 1, 2
    ORDER BY received DESC, integration_id, alertname
    LIMIT %(limit)s
)
SELECT n.integration_id, g.name, s.name, n.alertname, n.alerts, n.received, n.suppressed, n.flaps,
       n.without_incident, n.acknowledged
FROM per_name n
JOIN incidents_integration g ON g.id = n.integration_id
JOIN incidents_service s ON s.id = g.service_id
ORDER BY n.received DESC, n.integration_id, n.alertname
"""


def alert_team_sql(team_id: int | None) -> dict[str, str]:
    """The `{team_join}` and `{team_filter}` parts of a statement over `incidents_alert a`: the alerts of the
    integrations of one team's services (the parameter `%(team_id)s`), or every alert when `team_id` is None."""
    if team_id is None:
        return {"team_join": "", "team_filter": ""}
    return {
        "team_join": "JOIN incidents_integration ti ON ti.id = a.integration_id "
        "JOIN incidents_service ts ON ts.id = ti.service_id",
        "team_filter": "AND ts.team_id = %(team_id)s",
    }


def alert_noise(
    *, since: datetime, until: datetime | None = None, limit: int = 50, team_id: int | None = None
) -> list[AlertNoise]:
    """Per integration and alert name, noisiest first (most notifications received): one query. With `team_id`,
    only the alerts of integrations of that team's services (the metrics issue builds on it)."""
    sql = ALERT_NOISE_SQL.format(
        until="AND a.received_at < %(until)s" if until is not None else "", **alert_team_sql(team_id)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"since": since, "until": until, "limit": limit, "team_id": team_id})
        rows = cursor.fetchall()
    return [
        AlertNoise(
            integration_id=integration_id,
            integration=integration,
            service=service,
            alertname=alertname or "",
            alerts=alerts,
            received=received,
            deduplicated=received - alerts,
            suppressed=suppressed,
            flaps=flaps,
            without_incident=without_incident,
            acknowledged=acknowledged,
        )
        for (
            integration_id,
            integration,
            service,
            alertname,
            alerts,
            received,
            suppressed,
            flaps,
            without_incident,
            acknowledged,
        ) in rows
    ]
