"""Alert ingestion data: integrations (where monitoring posts), alerts, routes, maintenance windows.

Imported at the bottom of incidents/models.py so Django registers these models under the `incidents` app.
Workflows live in incidents/alerting/; these classes only hold data and invariants.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from incidents.models import Incident, Service, Severity


class Integration(models.Model):
    """One monitoring source posting to Firebreak for a service, authenticated by an unguessable key.

    Only the SHA-256 digest of the key is stored: the key is shown once (creation or regeneration) and
    a request's key is found by its digest, then compared with `hmac.compare_digest`."""

    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager (webhook v4)"
        PAGERDUTY_V2 = "pagerduty_v2", "PagerDuty Events API v2 compatible"
        GENERIC = "generic", "Generic JSON"

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="integrations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    key_digest = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the key, hex")
    key_hint = models.CharField(
        max_length=8, editable=False, help_text="First characters of the key, to tell keys apart"
    )
    key_rotated_at = models.DateTimeField(editable=False)
    auto_resolve = models.BooleanField(
        default=True, help_text="Resolve the incident when every alert of its group has resolved"
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=600, help_text="Requests per minute accepted; more get HTTP 429"
    )
    # fixed one-minute window counter, updated by one UPDATE … RETURNING per request
    rate_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    rate_window_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name"],
                name="incidents_integration_unique_name_per_service",
                violation_error_message="this service already has an integration with this name",
            ),
            models.CheckConstraint(
                condition=Q(rate_limit_per_minute__gt=0),
                name="incidents_integration_rate_limit_positive",
                violation_error_message="the rate limit must be at least 1 request per minute",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} · {self.name} ({self.get_kind_display()})"


class AlertRoute(models.Model):
    """An ordered rule of an integration: the first route whose matchers all match an alert's labels wins.

    `matchers` maps a label to a value: `"critical"` (equal), `"!=critical"` (not equal), `"=~pay.*"`
    (regex, anchored at both ends as in Alertmanager), `"!~pay.*"` (regex does not match). A missing label
    is the empty string."""

    class RouteSeverity(models.TextChoices):
        FROM_LABEL = "", "From the severity label (default mapping)"
        P0 = "P0", "P0"
        P1 = "P1", "P1"
        P2 = "P2", "P2"
        P3 = "P3", "P3"
        NONE = "none", "No incident (store only)"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveSmallIntegerField(default=0)
    matchers = models.JSONField(default=dict, blank=True, help_text='e.g. {"severity": "critical", "team": "=~pay.*"}')
    severity = models.CharField(max_length=4, choices=RouteSeverity.choices, blank=True)
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: the integration's service",
    )
    flap_delay = models.DurationField(
        default=timedelta(0),
        help_text="Open the incident only if the alert still fires after this delay; resolved sooner = noise",
    )

    class Meta:
        ordering = ["integration", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "position"],
                name="incidents_alertroute_unique_position",
                violation_error_message="two routes of an integration cannot share a position",
            ),
            models.CheckConstraint(
                condition=Q(flap_delay__gte=timedelta(0)),
                name="incidents_alertroute_flap_delay_not_negative",
                violation_error_message="the flap delay cannot be negative",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=["", "P0", "P1", "P2", "P3", "none"]),
                name="incidents_alertroute_severity_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.matchers or 'everything'} → {self.severity or 'label'}"


class Alert(models.Model):
    """One alert as monitoring sent it: the same fingerprint while firing is this row again (repeat_count)."""

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    class Suppressed(models.TextChoices):
        NO = "", "Not suppressed"
        MAINTENANCE = "maintenance", "Maintenance window"
        FLAP = "flap", "Flapping (resolved within the flap delay)"
        INFORMATIONAL = "informational", "Informational (routing gives no incident)"

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="alerts")
    fingerprint = models.CharField(max_length=255, help_text="The dedup key")
    group_key = models.TextField(help_text="Alerts of a group share one open incident")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.FIRING)
    title = models.CharField(max_length=300, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(help_text="First received")
    last_received_at = models.DateTimeField()
    repeat_count = models.PositiveIntegerField(default=1, help_text="How many times it was received")
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When Firebreak learnt it resolved")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    route = models.ForeignKey(AlertRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="alerts", help_text="Routed service")
    severity = models.CharField(max_length=2, choices=Severity.choices, blank=True, help_text="Routed; empty: none")
    actionable = models.BooleanField(default=True, help_text="Routing says it should open an incident")
    suppressed = models.CharField(max_length=16, choices=Suppressed.choices, blank=True)
    incident_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Flap delay: the incident opens at this time if the alert still fires"
    )
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "fingerprint"],
                condition=Q(status="firing"),
                name="incidents_alert_one_firing_per_fingerprint",
                violation_error_message="an integration has one firing alert per fingerprint",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gte=F("starts_at")),
                name="incidents_alert_ends_after_start",
                violation_error_message="ends_at cannot be before starts_at",
            ),
            models.CheckConstraint(condition=Q(repeat_count__gte=1), name="incidents_alert_repeat_count_positive"),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="incidents_alert_resolved_has_time",
                violation_error_message="a resolved alert needs resolved_at",
            ),
        ]
        indexes = [
            # dedup: the firing alert of (integration, fingerprint); also the last resolved one for repeats
            models.Index(fields=["integration", "fingerprint", "-received_at"], name="incidents_alert_dedup_idx"),
            # group_key → the group's open incident: newest attached alert first, so the lookup stops at the first
            # open incident instead of reading every alert the group ever had (bench/RESULTS.md, ingestion)
            models.Index(
                fields=["integration", "group_key", "-received_at"],
                name="incidents_alert_group_rcv_idx",
                condition=Q(incident__isnull=False),
            ),
            # the flap sweep: firing alerts whose incident is due and not yet opened
            models.Index(
                fields=["incident_due_at"],
                name="incidents_alert_due_idx",
                condition=Q(incident_due_at__isnull=False),
            ),
            # the admin list, newest first
            models.Index(fields=["-received_at", "-id"], name="incidents_alert_received_idx"),
            # auto-resolve: are any alerts of this incident still firing?
            models.Index(fields=["incident", "status"], name="incidents_alert_incident_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title or self.fingerprint} ({self.status})"


class MaintenanceWindow(models.Model):
    """While a window of a service is on, its alerts are stored but open no incident and page nobody."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="incidents_maintenancewindow_ends_after_start",
                violation_error_message="a maintenance window must end after it starts",
            ),
        ]
        indexes = [
            # "is this service in maintenance now?" at every alert
            models.Index(fields=["service", "ends_at", "starts_at"], name="incidents_maint_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service}: {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M} {self.reason}"
