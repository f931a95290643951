"""Records about the schedule: issues (gaps, rest), handoffs, and personal calendar feeds."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import DateTimeRangeField
from django.db import models
from django.db.models import Q

from oncall import formatting
from oncall.models.schedule import Rotation, new_ical_token


class ScheduleIssue(models.Model):
    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        WARNING = "warning", "Warning"

    class Kind(models.TextChoices):
        GAP = "gap", "Nobody can take the slot"
        REST = "rest", "Rest shorter than the minimum"
        CONSECUTIVE = "consecutive", "Too many consecutive days"
        UNDERSTAFFED = "understaffed", "Too few members"
        FAIRNESS = "fairness", "Fairness drift"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="issues")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    slot = models.IntegerField(null=True, blank=True)
    period = DateTimeRangeField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the admin's open-issues list
            models.Index(
                fields=["rotation", "slot"], name="oncall_issue_open_idx", condition=Q(resolved_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.message}"


class Handoff(models.Model):
    class Kind(models.TextChoices):
        HANDOFF = "handoff", "Handoff"
        SAME_PERSON = "same_person", "Same person continues"

    class Status(models.TextChoices):
        NOTIFIED = "notified", "Notified"
        LATE = "late", "Notified late"
        RECORDED = "recorded", "Recorded only"
        MISSED = "missed", "Missed (superseded by a later boundary)"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="handoffs")
    boundary_at = models.DateTimeField()
    outgoing = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    incoming = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    lateness = models.DurationField(default=timedelta(0))
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-boundary_at"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "boundary_at"], name="oncall_handoff_unique_boundary"),
        ]

    def __str__(self) -> str:
        return f"{self.rotation} at {formatting.when(self.boundary_at, self.rotation.timezone)}"


class CalendarFeed(models.Model):
    """A person's iCal feed token (all their shifts, every rotation). Rotating the token revokes old links."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True, default=new_ical_token, editable=False)

    def __str__(self) -> str:
        return f"calendar feed of {self.user}"
