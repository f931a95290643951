from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from oncall.models import EscalationPolicy, Team


class Severity(models.TextChoices):
    P0 = "P0", "P0 — site down"
    P1 = "P1", "P1 — core functionality broken"
    P2 = "P2", "P2 — degraded performance"
    P3 = "P3", "P3 — minor bug"


class SeverityPolicy(models.Model):
    """What a severity means and what it demands. One row per level, created by migration."""

    severity = models.CharField(max_length=2, choices=Severity.choices, unique=True)
    name = models.CharField(max_length=64)
    definition = models.TextField()
    response_target = models.DurationField(help_text="Time to acknowledge we aim for")
    update_cadence = models.DurationField(
        null=True, blank=True, help_text="Status updates at least this often while open; empty: no cadence"
    )
    postmortem_required = models.BooleanField(default=False)
    postmortem_deadline = models.DurationField(default=timedelta(days=7))
    channel_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["severity"]
        verbose_name_plural = "severity policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(update_cadence__isnull=True) | Q(update_cadence__gt=timedelta(0)),
                name="incidents_severitypolicy_cadence_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.name}"


class Service(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    description = models.TextField(blank=True)
    escalation_policy = models.ForeignKey(
        EscalationPolicy,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="services",
        help_text="Who is paged when an incident of this service is triggered; empty: the team's managers",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RefCounter(models.Model):
    """The last incident number used in a year; incremented atomically by `INSERT … ON CONFLICT`."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.value}"


def _ordered(earlier: str, later: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{earlier}__isnull": True})
        | Q(**{f"{later}__isnull": True})
        | Q(**{f"{earlier}__lte": F(later)}),
        name=f"incidents_incident_{earlier.removesuffix('_at')}_before_{later.removesuffix('_at')}",
        violation_error_message=f"{later} cannot be before {earlier}",
    )


# Timestamp order the database holds (each pair where both are set); services check the same list first.
TIME_ORDER = [
    ("started_at", "detected_at"),
    ("detected_at", "acknowledged_at"),
    ("started_at", "mitigated_at"),
    ("mitigated_at", "resolved_at"),
    ("started_at", "resolved_at"),
    ("resolved_at", "closed_at"),
]


TIME_ORDER_CONSTRAINTS = {_ordered(earlier, later).name for earlier, later in TIME_ORDER}


class Incident(models.Model):
    class Status(models.TextChoices):
        TRIGGERED = "triggered", "Triggered"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    class ClosureReason(models.TextChoices):
        DUPLICATE = "duplicate", "Duplicate"
        FALSE_POSITIVE = "false_positive", "False positive"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        ALERT = "alert", "Alert"
        MANUAL = "manual", "Manual"
        IMPORT = "import", "Import"

    OPEN_STATUSES = (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.MITIGATED)

    ref = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=2, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIGGERED)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents")
    started_at = models.DateTimeField(help_text="When impact began (may be back-filled)")
    detected_at = models.DateTimeField(help_text="When monitoring or a person noticed")
    declared_at = models.DateTimeField(help_text="When the incident was declared; never edited")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comms_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="communications lead",
    )
    channel = models.CharField(max_length=80, blank=True, help_text="Chat channel name (P0 and P1)")
    is_practice = models.BooleanField(default=False, help_text="Practice incidents page for real but never count")
    game_day = models.ForeignKey(
        "incidents.GameDay", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    closure_reason = models.CharField(max_length=16, choices=ClosureReason.choices, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    repeat_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="repeats")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-declared_at", "-id"]
        constraints = [
            *[_ordered(earlier, later) for earlier, later in TIME_ORDER],
            models.CheckConstraint(
                condition=~Q(closure_reason="duplicate") | Q(duplicate_of__isnull=False),
                name="incidents_incident_duplicate_needs_original",
                violation_error_message="a duplicate must name the incident it duplicates",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | ~Q(closure_reason=""),
                name="incidents_incident_cancelled_needs_reason",
                violation_error_message="a cancelled incident needs a closure reason",
            ),
            models.CheckConstraint(
                condition=Q(duplicate_of__isnull=True) | ~Q(duplicate_of=F("pk")),
                name="incidents_incident_not_duplicate_of_itself",
            ),
        ]
        indexes = [
            # the admin and API lists, newest first, and metrics by month of declaration
            models.Index(fields=["-declared_at", "-id"], name="incidents_declared_idx"),
            # "open incidents of this service" (alerts, handoffs, reminders)
            models.Index(
                fields=["service", "status"],
                name="incidents_open_by_service_idx",
                condition=Q(status__in=["triggered", "acknowledged", "mitigated"]),
            ),
            # list filters by status and severity, newest first
            models.Index(fields=["status", "severity", "-declared_at"], name="incidents_status_sev_idx"),
            # metrics.selectors.repeat_count: counted incidents of a service started in the 30 days before
            # (bench/RESULTS.md: the 1M-incident monthly report from over 60 s to under 2 s)
            models.Index(
                fields=["service", "started_at"],
                name="incidents_repeat_window_idx",
                condition=Q(is_practice=False) & ~Q(status="cancelled"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    def get_constraints(self):
        """Model validation (admin forms) skips the timestamp-order checks: incidents.services.check_time_order
        runs them first with the fields' labels and the times in their zone, and the database holds them."""
        return [
            (model, [c for c in constraints if c.name not in TIME_ORDER_CONSTRAINTS])
            for model, constraints in super().get_constraints()
        ]

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class IncidentEvent(models.Model):
    """The append-only timeline. `at` is when it happened; `recorded_at` when Firebreak wrote it down."""

    class Kind(models.TextChoices):
        DECLARED = "declared", "Declared"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened"
        CANCELLED = "cancelled", "Cancelled"
        SEVERITY_CHANGED = "severity_changed", "Severity changed"
        EDITED = "edited", "Edited"
        ROLE_ASSIGNED = "role_assigned", "Role assigned"
        STATUS_UPDATE = "status_update", "Status update"
        TIMES_CORRECTED = "times_corrected", "Times corrected"
        REMINDER_SENT = "reminder_sent", "Reminder sent"
        AUTOMATION = "automation", "Automated action"
        NOTE = "note", "Note"
        IMPORTED = "imported", "Imported"
        PAGED = "paged", "Paged"
        ESCALATION_GAP = "escalation_gap", "Escalation step skipped (nobody on call)"
        ESCALATION_STOPPED = "escalation_stopped", "Escalation stopped"
        ESCALATION_EXHAUSTED = "escalation_exhausted", "Escalation exhausted"
        NOTIFICATION_FAILED = "notification_failed", "Notification failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # the timeline of one incident in order
            models.Index(fields=["incident", "at", "id"], name="incidents_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"


class IncidentRoleAssignment(models.Model):
    class Role(models.TextChoices):
        COMMANDER = "commander", "Incident commander"
        COMMS_LEAD = "comms_lead", "Communications lead"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="role_assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    assigned_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["assigned_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "role"],
                condition=Q(released_at__isnull=True),
                name="incidents_roleassignment_one_holder",
                violation_error_message="a role has one current holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.user}"


class StatusUpdate(models.Model):
    class Audience(models.TextChoices):
        RESPONDERS = "responders", "Responders"
        STAKEHOLDERS = "stakeholders", "Stakeholders"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_updates")
    at = models.DateTimeField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField()
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.STAKEHOLDERS)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # the latest update of an incident (reminders)
            models.Index(fields=["incident", "-at"], name="incidents_update_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.message[:40]}"


# Alert ingestion models live in their own module; importing them here registers them with the app.


class Escalation(models.Model):
    """One run of a service's escalation policy for one incident: which step is next and when.

    The `token` changes whenever a step is scheduled; a task carrying an older token is superseded and exits,
    so duplicate or late deliveries never page twice."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped (acknowledged or resolved)"
        EXHAUSTED = "exhausted", "Exhausted (nobody acknowledged)"

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="escalation")
    policy = models.ForeignKey(
        EscalationPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    step_index = models.PositiveSmallIntegerField(
        default=0, help_text="The next step to run (0-based, repeats counted)"
    )
    token = models.UUIDField(default=uuid.uuid4)
    next_run_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="running") | Q(next_run_at__isnull=False, finished_at__isnull=True),
                name="incidents_escalation_running_is_scheduled",
                violation_error_message="a running escalation has a next run and no finish time",
            ),
        ]
        indexes = [
            # the sweep: running escalations whose next step is due
            models.Index(fields=["next_run_at"], name="incidents_escalation_due_idx", condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"Escalation of {self.incident_id} ({self.status}, next step {self.step_index})"


from incidents.models_alerts import Alert, AlertRoute, Integration, MaintenanceWindow  # noqa: E402
from incidents.models_response import (  # noqa: E402
    AutomationAction,
    AutomationRule,
    AutomationRun,
    GameDay,
    IncidentRunbook,
    Runbook,
    RunbookVersion,
    SlackRequest,
    Subscription,
    TeamChatSettings,
)

__all__ = [
    "TIME_ORDER",
    "Alert",
    "AlertRoute",
    "AutomationAction",
    "AutomationRule",
    "AutomationRun",
    "GameDay",
    "IncidentRunbook",
    "Runbook",
    "RunbookVersion",
    "SlackRequest",
    "Subscription",
    "TeamChatSettings",
    "Incident",
    "IncidentEvent",
    "IncidentRoleAssignment",
    "Integration",
    "MaintenanceWindow",
    "RefCounter",
    "Service",
    "Severity",
    "SeverityPolicy",
    "StatusUpdate",
]
