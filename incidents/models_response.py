"""Response data: runbooks, automated actions, chat settings, stakeholder subscriptions, game days.

Imported at the bottom of incidents/models.py so Django registers these models under the `incidents` app.
Workflows live in incidents/runbooks/, incidents/automation/, incidents/chatops/, incidents/gamedays/ and
incidents/stakeholders.py; these classes only hold data and invariants.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from oncall.models import Team


class Runbook(models.Model):
    """What to do for a service, or for one alert of it. The body lives in immutable numbered versions."""

    service = models.ForeignKey("incidents.Service", on_delete=models.CASCADE, related_name="runbooks")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="Alerts may link to …/runbooks/<slug>/")
    alert_name = models.CharField(
        max_length=200, blank=True, help_text="The alertname label this runbook answers; empty: the whole service"
    )
    source_url = models.URLField(
        max_length=500, blank=True, help_text="The runbook_url annotation alerts carry for this runbook, if any"
    )
    current_version = models.ForeignKey(
        "incidents.RunbookVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, help_text="Last time someone confirmed it is right")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service__name", "title"]
        indexes = [
            # matching an incident's alerts to runbooks: by service and alert name
            models.Index(fields=["service", "alert_name"], name="incidents_runbook_match_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class RunbookVersion(models.Model):
    """One immutable revision of a runbook's Markdown body."""

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    change_note = models.CharField(max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["runbook", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["runbook", "number"], name="incidents_runbookversion_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="incidents_runbookversion_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.runbook} v{self.number}"


class IncidentRunbook(models.Model):
    """The runbook version responders were shown for an incident, recorded when it was declared."""

    class MatchedBy(models.TextChoices):
        ALERT_NAME = "alert_name", "Alert name"
        RUNBOOK_URL = "runbook_url", "Alert runbook_url"
        SERVICE = "service", "Service"

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="runbook_links")
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="incident_links")
    version = models.ForeignKey(RunbookVersion, on_delete=models.PROTECT, related_name="+")
    matched_by = models.CharField(max_length=16, choices=MatchedBy.choices)
    attached_at = models.DateTimeField()

    class Meta:
        ordering = ["attached_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "runbook"], name="incidents_incidentrunbook_once"),
        ]

    def __str__(self) -> str:
        return f"{self.runbook} v{self.version.number}"


class AutomationAction(models.Model):
    """An outbound HTTP call into the team's own tooling (restart, scale, roll back)."""

    class Method(models.TextChoices):
        POST = "POST", "POST"
        PUT = "PUT", "PUT"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    url = models.URLField(max_length=500, help_text="Its host must be on FIREBREAK_AUTOMATION_ALLOWED_HOSTS")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    payload_template = models.TextField(
        blank=True, help_text="JSON body with {{ field }} placeholders (ref, title, severity, service, …)"
    )
    secret = models.CharField(max_length=200, help_text="Signs each request: X-Firebreak-Signature (HMAC-SHA256)")
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=1) & Q(timeout_seconds__lte=60),
                name="incidents_automationaction_timeout_range",
                violation_error_message="the timeout is between 1 and 60 seconds",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AutomationRule(models.Model):
    """When an incident matches (empty fields match anything), run the action or offer it as a button."""

    action = models.ForeignKey(AutomationAction, on_delete=models.CASCADE, related_name="rules")
    service = models.ForeignKey(
        "incidents.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="automation_rules"
    )
    severity = models.CharField(
        max_length=2, blank=True, choices=[("P0", "P0"), ("P1", "P1"), ("P2", "P2"), ("P3", "P3")]
    )
    alert_name = models.CharField(max_length=200, blank=True)
    auto = models.BooleanField(default=False, help_text="Run on declaration; otherwise a button on the incident")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["action__name", "id"]

    def __str__(self) -> str:
        parts = [self.service.name if self.service_id else "any service", self.severity or "any severity"]
        if self.alert_name:
            parts.append(self.alert_name)
        return f"{self.action}: {', '.join(parts)} ({'auto' if self.auto else 'button'})"


class AutomationRun(models.Model):
    """One request of an action for an incident: who or which rule asked, what was sent and what came back."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"

    action = models.ForeignKey(AutomationAction, on_delete=models.PROTECT, related_name="runs")
    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="automation_runs")
    rule = models.ForeignKey(AutomationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    request_method = models.CharField(max_length=8, blank=True)
    request_url = models.CharField(max_length=500, blank=True)
    request_body = models.TextField(blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The first 2,000 characters")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # a rule runs automatically at most once per incident
            models.UniqueConstraint(
                fields=["incident", "rule"],
                condition=Q(rule__isnull=False, requested_by__isnull=True),
                name="incidents_automationrun_auto_once",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(status__in=["succeeded", "failed", "refused"]),
                name="incidents_automationrun_finished_is_final",
                violation_error_message="only a succeeded, failed or refused run has a finish time",
            ),
        ]
        indexes = [
            # the admin list, newest first
            models.Index(fields=["-created_at", "-id"], name="incidents_autorun_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} for {self.incident_id} ({self.status})"


class TeamChatSettings(models.Model):
    """Where a team's incident news goes in Slack (an incoming-webhook URL bound to its channel)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="chat_settings")
    slack_webhook_url = models.URLField(max_length=500, help_text="Slack incoming-webhook URL of the team channel")

    class Meta:
        verbose_name = "team chat settings"
        verbose_name_plural = "team chat settings"

    def __str__(self) -> str:
        return f"Slack for {self.team}"


class SlackRequest(models.Model):
    """A signed Slack request already accepted: its signature is unique, so a replay within the five-minute
    window (or a concurrent duplicate) is refused by the database. Rows older than the window are pruned."""

    signature = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            # pruning: DELETE … WHERE received_at < now - window
            models.Index(fields=["received_at"], name="incidents_slackreq_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"Slack request at {self.received_at:%Y-%m-%d %H:%M:%S} UTC"


class Subscription(models.Model):
    """A stakeholder who receives stakeholder-audience status updates of a service or of one incident."""

    service = models.ForeignKey(
        "incidents.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(service__isnull=True, incident__isnull=False)
                | Q(service__isnull=False, incident__isnull=True),
                name="incidents_subscription_one_target",
                violation_error_message="subscribe to a service or to one incident",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=True, email__gt="") | Q(user__isnull=False, email=""),
                name="incidents_subscription_one_recipient",
                violation_error_message="a subscription is for a user or an e-mail address",
            ),
        ]
        indexes = [
            # subscribers of an incident's service when an update goes out
            models.Index(fields=["service"], name="incidents_subscription_svc_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.email} → {self.service or self.incident}"


class GameDay(models.Model):
    """A planned drill: a hypothesis tested by practice incidents that page for real but never count."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        ABORTED = "aborted", "Aborted"

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", "Hypothesis confirmed"
        REFUTED = "refuted", "Hypothesis refuted"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    title = models.CharField(max_length=200)
    hypothesis = models.TextField()
    scheduled_for = models.DateTimeField()
    services = models.ManyToManyField("incidents.Service", related_name="game_days", blank=True)
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blast_radius = models.TextField(blank=True)
    abort_criteria = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    findings = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="completed") | ~Q(outcome=""),
                name="incidents_gameday_completed_needs_outcome",
                violation_error_message="a completed game day has an outcome",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(started_at__lte=models.F("ended_at")),
                name="incidents_gameday_started_before_ended",
            ),
        ]

    def __str__(self) -> str:
        return self.title
