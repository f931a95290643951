from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not an IANA time zone (for example Europe/Berlin).")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    description = models.TextField(blank=True)
    chat_channel = models.CharField(
        max_length=200, blank=True, help_text="Team chat channel (for example a Slack channel ID) told of handoffs"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Manager"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="oncall_teammembership_unique_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class ContactMethod(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    address = models.CharField(max_length=500, help_text="E-mail address, Slack member ID, or webhook URL")
    position = models.PositiveSmallIntegerField(default=0, help_text="Lower positions are tried first")

    class Meta:
        ordering = ["user", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "address"], name="oncall_contactmethod_unique_address"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.address}"


class Notification(models.Model):
    """The outbox of every page, e-mail and chat message. One row per dedupe_key: never sent twice."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    dedupe_key = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    address = models.CharField(max_length=500, blank=True)
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the delivery sweep: pending notifications whose next attempt is due
            models.Index(
                fields=["next_attempt_at"],
                name="oncall_notif_pending_due_idx",
                condition=Q(status="pending"),
            ),
            # the admin list, newest first
            models.Index(fields=["-created_at", "-id"], name="oncall_notif_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.address or self.user}: {self.subject}"
