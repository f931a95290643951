"""Writes of alert ingestion: integrations and their keys, the rate limit, receiving alerts, flap-delayed incidents.

`alerts_receive` is one transaction: the alert rows and any incident they open (or resolve) commit together,
before the receiver answers 2xx. Paging is the escalation engine's business: it listens to incident
transitions (`incidents.services.register_transition_listener`) and enqueues its tasks on commit.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from incidents.alerting import routing, selectors
from incidents.alerting.payloads import IncomingAlert
from incidents.models import Alert, Incident, Integration, Service
from incidents.services import lifecycle
from oncall.queueing import publish_soon

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return timezone.now()


def _new_key() -> str:
    # 128 random bits as 32 hex characters: the shape of a PagerDuty routing key, safe in a URL path
    return secrets.token_hex(16)


# --- integrations ------------------------------------------------------------------------------------------------


def integration_create(
    *,
    service: Service,
    kind: str,
    name: str = "",
    auto_resolve: bool = True,
    rate_limit_per_minute: int = 600,
) -> tuple[Integration, str]:
    """Create an integration and return it with its key: the only time the key is seen in clear."""
    errors: dict[str, list[str]] = {}
    if kind not in Integration.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(Integration.Kind.values)}."]
    if rate_limit_per_minute < 1:
        errors["rate_limit_per_minute"] = ["At least 1 request per minute."]
    name = (name or "").strip() or kind
    if Integration.objects.filter(service=service, name=name).exists():
        errors["name"] = [f"{service} already has an integration named {name!r}."]
    if errors:
        raise ValidationError(errors)
    key = _new_key()
    with transaction.atomic():
        integration = Integration.objects.create(
            service=service,
            kind=kind,
            name=name,
            key_digest=selectors.key_digest(key),
            key_hint=key[:6],
            key_rotated_at=_now(),
            auto_resolve=auto_resolve,
            rate_limit_per_minute=rate_limit_per_minute,
        )
    return integration, key


def integration_regenerate_key(*, integration: Integration) -> str:
    """A new key; the old one stops working at commit. Returns the new key (shown once)."""
    key = _new_key()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        integration.key_digest = selectors.key_digest(key)
        integration.key_hint = key[:6]
        integration.key_rotated_at = _now()
        integration.save(update_fields=["key_digest", "key_hint", "key_rotated_at"])
    return key


def integration_count_request(*, integration: Integration, now: datetime | None = None) -> int | None:
    """Count a request in the integration's current one-minute window.

    Returns None when it is within `rate_limit_per_minute`, else the seconds until the next window
    (the `Retry-After`). One UPDATE … RETURNING, atomic on its own (no transaction around it: BEGIN and COMMIT
    would be two more round trips per request): exact under any number of web processes."""
    now = now or _now()
    window = now.replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE incidents_integration SET "
            "rate_window_count = CASE WHEN rate_window_start = %s THEN rate_window_count + 1 ELSE 1 END, "
            "rate_window_start = %s WHERE id = %s RETURNING rate_window_count, rate_limit_per_minute",
            [window, window, integration.pk],
        )
        count, limit = cursor.fetchone()
    if count <= limit:
        return None
    return max(1, 60 - now.second)


# --- receiving ---------------------------------------------------------------------------------------------------


@dataclass
class ReceiveResult:
    alerts: list[Alert] = field(default_factory=list)
    created: int = 0
    deduplicated: int = 0
    resolved: int = 0
    incidents_opened: list[Incident] = field(default_factory=list)
    incidents_resolved: list[Incident] = field(default_factory=list)


def _lock(name: str) -> None:
    """A transaction-scoped PostgreSQL advisory lock: concurrent posts of one group or alert queue up."""
    _lock_all([name])


def _lock_all(names: list[str]) -> None:
    """Advisory locks on every name, in the order given, in one round trip (a function scan of `unnest` runs
    in array order, so every request takes its locks in the same order: no deadlock between two requests)."""
    if not names:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) FROM unnest(%s::text[]) AS name",
            [names],
        )


class _Batch:
    """What one request needs more than once, read once: the firing alerts of its fingerprints (one query),
    the maintenance state of a service and the open incident of a group (once each), and the new alerts,
    inserted together by `flush` (one INSERT). A request of N alerts joining an open incident runs the same
    number of queries whatever N is (bench/RESULTS.md)."""

    def __init__(self, *, integration: Integration, items: list[IncomingAlert], now: datetime, result: ReceiveResult):
        self.integration, self.now, self.result = integration, now, result
        self.routes = routing.integration_routes(integration=integration)
        self.firing: dict[str, Alert] = {
            alert.fingerprint: alert
            for alert in Alert.objects.select_for_update().filter(
                integration=integration,
                fingerprint__in={item.fingerprint for item in items},
                status=Alert.Status.FIRING,
            )
        }
        self.pending: list[Alert] = []
        self.repeated: dict[int, Alert] = {}  # saved rows fired again, by id
        self._maintenance: dict[int, bool] = {}
        self._group_incident: dict[str, Incident | None] = {}

    def in_maintenance(self, service: Service) -> bool:
        if service.pk not in self._maintenance:
            self._maintenance[service.pk] = selectors.service_in_maintenance(service=service, at=self.now) is not None
        return self._maintenance[service.pk]

    def group_incident(self, group_key: str) -> Incident | None:
        if group_key not in self._group_incident:
            self._group_incident[group_key] = selectors.group_open_incident(
                integration=self.integration, group_key=group_key
            )
        return self._group_incident[group_key]

    def fire(self, item: IncomingAlert) -> Alert:
        existing = self.firing.get(item.fingerprint)
        if existing is not None:
            self.result.deduplicated += 1
            _repeat(existing=existing, item=item, now=self.now)
            if existing.pk is not None:
                self.repeated[existing.pk] = existing
            return existing
        now = self.now
        decision = routing.route_alert(integration=self.integration, routes=self.routes, labels=item.labels)
        alert = _new_alert(
            integration=self.integration,
            item=item,
            decision=decision,
            now=now,
            status=Alert.Status.FIRING,
            starts_at=item.starts_at or now,
            ends_at=item.ends_at,
        )
        if not alert.actionable:
            alert.suppressed = Alert.Suppressed.INFORMATIONAL
        elif self.in_maintenance(decision.service):
            alert.suppressed = Alert.Suppressed.MAINTENANCE
        else:
            incident = self.group_incident(item.group_key)
            if incident is not None:
                alert.incident = incident
                self._group_incident[item.group_key] = _raise_severity(incident=incident, alert=alert)
            elif decision.flap_delay.total_seconds() > 0:
                alert.incident_due_at = now + decision.flap_delay
            else:
                alert.incident = _declare_incident(alert=alert, now=now)
                self._group_incident[item.group_key] = alert.incident
                self.result.incidents_opened.append(alert.incident)
        self.result.created += 1
        self.firing[item.fingerprint] = alert
        self.pending.append(alert)
        return alert

    def flush(self) -> None:
        """Write the repeats (one UPDATE) and insert the new alerts (one INSERT), then schedule the flap-delay
        tasks of those that wait."""
        if self.repeated:
            Alert.objects.bulk_update(list(self.repeated.values()), REPEAT_FIELDS)
            self.repeated = {}
        if not self.pending:
            return
        Alert.objects.bulk_create(self.pending)
        for alert in self.pending:
            if alert.incident_id is None and alert.incident_due_at is not None:
                delay = (alert.incident_due_at - self.now).total_seconds()
                transaction.on_commit(partial(_schedule_open, alert_id=alert.pk, countdown=delay))
        self.pending = []


def alerts_receive(*, integration: Integration, alerts: list[IncomingAlert]) -> ReceiveResult:
    """Store what a request carried and act on it, in one transaction.

    firing, new fingerprint → a new alert, routed; it joins its group's open incident, or opens one now
    (or after the route's flap delay), unless routing gives no severity or the service is in maintenance.
    firing, known fingerprint → the same row, repeat_count + 1 (no second incident).
    resolved → the alert resolves; still waiting for its flap delay: suppressed as a flap, no incident ever;
    the incident auto-resolves when none of its alerts fires any more (per-integration switch).
    PagerDuty acknowledge → the alert and its incident are acknowledged.

    Alerts are handled in the order sent. New firing alerts are inserted together (`_Batch.flush`) at the
    end, or before a resolution or acknowledgement that may concern them."""
    result = ReceiveResult()
    now = _now()
    with transaction.atomic():
        _lock_all(
            [f"alert-group:{integration.pk}:{key}" for key in sorted({item.group_key for item in alerts})]
            + [f"alert:{integration.pk}:{fingerprint}" for fingerprint in sorted({item.fingerprint for item in alerts})]
        )
        batch = _Batch(integration=integration, items=alerts, now=now, result=result)
        touched: set[int] = set()
        for item in alerts:
            if item.action == "acknowledge":
                batch.flush()
                alert = _acknowledge(existing=batch.firing.get(item.fingerprint), now=now)
            elif item.status == Alert.Status.FIRING:
                alert = batch.fire(item)
            else:
                batch.flush()
                alert = _resolve(
                    integration=integration,
                    routes=batch.routes,
                    item=item,
                    existing=batch.firing.pop(item.fingerprint, None),
                    now=now,
                )
                if alert is not None:
                    result.resolved += 1
                    if alert.incident_id:
                        touched.add(alert.incident_id)
            if alert is not None:
                result.alerts.append(alert)
        batch.flush()
        if integration.auto_resolve and touched:
            for incident in Incident.objects.filter(pk__in=touched, status__in=Incident.OPEN_STATUSES):
                if not Alert.objects.filter(incident=incident, status=Alert.Status.FIRING).exists():
                    result.incidents_resolved.append(
                        lifecycle.incident_resolve(
                            incident=incident, actor=None, message="Auto-resolved: every alert of the group resolved."
                        )
                    )
    return result


REPEAT_FIELDS = ["repeat_count", "last_received_at", "labels", "annotations", "raw", "title", "ends_at"]


def _repeat(*, existing: Alert, item: IncomingAlert, now: datetime) -> None:
    """The same fingerprint firing again: one row, counted. The caller writes it (`_Batch.flush`)."""
    existing.repeat_count += 1
    existing.last_received_at = now
    existing.labels, existing.annotations, existing.raw = item.labels, item.annotations, item.raw
    existing.title = item.title or existing.title
    existing.ends_at = item.ends_at if item.ends_at and item.ends_at >= existing.starts_at else existing.ends_at


def _schedule_open(*, alert_id: int, countdown: float) -> None:
    """After commit: the countdown task. If the broker is down, the alert is stored all the same and the sender
    still gets its 2xx; the every-minute sweep opens the incident when the delay has passed."""
    from incidents.alerting import tasks  # tasks import this module

    publish_soon(tasks.open_alert_incident_task, alert_id, countdown=countdown)  # never waits on the broker


def _resolve(
    *, integration: Integration, routes: list, item: IncomingAlert, existing: Alert | None, now: datetime
) -> Alert | None:
    if existing is not None:
        existing.status = Alert.Status.RESOLVED
        existing.resolved_at = now
        existing.last_received_at = now
        ends_at = item.ends_at or now
        existing.ends_at = max(ends_at, existing.starts_at)
        fields = ["status", "resolved_at", "last_received_at", "ends_at"]
        if existing.incident_id is None and existing.incident_due_at is not None:
            existing.suppressed = Alert.Suppressed.FLAP  # resolved within the flap delay: noise, never an incident
            existing.incident_due_at = None
            fields += ["suppressed", "incident_due_at"]
        if item.labels:
            existing.labels, existing.annotations, existing.raw = item.labels, item.annotations, item.raw
            fields += ["labels", "annotations", "raw"]
        existing.save(update_fields=fields)
        return existing
    previous = (
        Alert.objects.select_for_update()
        .filter(integration=integration, fingerprint=item.fingerprint)
        .order_by("-received_at", "-id")
        .first()
    )
    if previous is not None and (item.starts_at is None or previous.starts_at == item.starts_at):
        previous.repeat_count += 1  # the same resolution sent again
        previous.last_received_at = now
        previous.save(update_fields=["repeat_count", "last_received_at"])
        return previous
    if item.action == "resolve":
        return None  # PagerDuty resolve of an unknown dedup_key: nothing to resolve (PagerDuty answers 202 too)
    decision = routing.route_alert(integration=integration, routes=routes, labels=item.labels)
    starts_at = item.starts_at or now
    alert = _new_alert(  # a resolution we never saw firing: kept for the record, no incident
        integration=integration,
        item=item,
        decision=decision,
        now=now,
        status=Alert.Status.RESOLVED,
        starts_at=starts_at,
        ends_at=max(item.ends_at or now, starts_at),
        resolved_at=now,
    )
    alert.save()
    return alert


def _new_alert(
    *, integration: Integration, item: IncomingAlert, decision: routing.RouteDecision, now: datetime, **fields
) -> Alert:
    """An unsaved alert as received and routed; `fields` give its status and times."""
    return Alert(
        integration=integration,
        fingerprint=item.fingerprint,
        group_key=item.group_key,
        title=item.title,
        labels=item.labels,
        annotations=item.annotations,
        received_at=now,
        last_received_at=now,
        route_id=decision.route_id,
        service=decision.service,
        severity=decision.severity or "",
        actionable=decision.severity is not None,
        raw=item.raw,
        **fields,
    )


def _acknowledge(*, existing: Alert | None, now: datetime) -> Alert | None:
    if existing is None:
        return None  # nothing firing under this dedup_key: PagerDuty accepts and ignores it too
    if existing.acknowledged_at is None:
        existing.acknowledged_at = now
        existing.save(update_fields=["acknowledged_at"])
    if existing.incident_id is not None:
        incident = Incident.objects.get(pk=existing.incident_id)
        if incident.status == Incident.Status.TRIGGERED:
            lifecycle.incident_acknowledge(incident=incident, actor=None)
    return existing


def _incident_summary(alert: Alert) -> str:
    lines = [alert.annotations.get("description", "")] if alert.annotations.get("description") else []
    lines += [f"{name}={value}" for name, value in sorted(alert.labels.items())]
    return "\n".join(lines)


def _raise_severity(*, incident: Incident, alert: Alert) -> Incident:
    """An alert joining an open incident with a higher severity raises it (never lowers: people may have).
    Returns the incident as it now is."""
    if alert.severity and alert.severity < incident.severity:  # "P0" < "P1": more severe
        return lifecycle.incident_update(incident=incident, actor=None, severity=alert.severity)
    return incident


def _declare_incident(*, alert: Alert, now: datetime) -> Incident:
    """Inside the receiving transaction: declare the incident of this alert's group (the alert may not be
    saved yet; the caller attaches it)."""
    return lifecycle.incident_declare(
        title=(alert.title or alert.labels.get("alertname") or f"Alert from {alert.integration.name}")[:200],
        severity=alert.severity,
        service=alert.service,
        actor=None,
        summary=_incident_summary(alert),
        detected_at=min(alert.starts_at, now),  # clocks of monitoring hosts may run ahead
        source=Incident.Source.ALERT,
    )


def _declare_for(*, alert: Alert, now: datetime) -> Incident:
    """A saved alert whose flap delay has passed: declare its group's incident and attach the alert."""
    incident = _declare_incident(alert=alert, now=now)
    alert.incident = incident
    alert.incident_due_at = None
    alert.save(update_fields=["incident", "incident_due_at"])
    return incident


def alert_open_due_incident(*, alert_id: int) -> Incident | None:
    """After the flap delay: the alert still fires → join the group's open incident or open one.

    Safe to run any number of times, early or late: it does nothing unless the alert is firing, due and
    still without an incident (the sweep and the countdown task may both run it)."""
    now = _now()
    with transaction.atomic():
        alert = Alert.objects.filter(pk=alert_id).select_related("integration", "service").first()
        if alert is None:
            return None
        _lock(f"alert-group:{alert.integration_id}:{alert.group_key}")
        alert = Alert.objects.select_for_update().select_related("integration", "service").get(pk=alert_id)
        if (
            alert.status != Alert.Status.FIRING
            or alert.incident_id is not None
            or alert.incident_due_at is None
            or alert.incident_due_at > now
        ):
            return None
        if selectors.service_in_maintenance(service=alert.service, at=now):
            alert.suppressed = Alert.Suppressed.MAINTENANCE
            alert.incident_due_at = None
            alert.save(update_fields=["suppressed", "incident_due_at"])
            return None
        incident = selectors.group_open_incident(integration=alert.integration, group_key=alert.group_key)
        if incident is not None:
            alert.incident = incident
            alert.incident_due_at = None
            alert.save(update_fields=["incident", "incident_due_at"])
            _raise_severity(incident=incident, alert=alert)
            return incident
        return _declare_for(alert=alert, now=now)
