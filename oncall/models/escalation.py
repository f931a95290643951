"""Escalation policies: ordered steps, each with a delay and targets."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from oncall.models.core import Team


class EscalationPolicy(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalation_policies")
    name = models.CharField(max_length=100)
    repeat = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(5)])

    class Meta:
        ordering = ["team__name", "name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="oncall_escalationpolicy_unique_name"),
            models.CheckConstraint(condition=Q(repeat__lte=5), name="oncall_escalationpolicy_repeat_0_5"),
        ]

    def __str__(self) -> str:
        return f"{self.team} / {self.name}"


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    delay_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="Minutes to wait for an acknowledgement before the next step",
    )

    class Meta:
        ordering = ["policy", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="oncall_escalationstep_unique_position"),
            models.CheckConstraint(
                condition=Q(delay_minutes__gte=1, delay_minutes__lte=1440), name="oncall_escalationstep_delay_1_1440"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position} (+{self.delay_minutes} min)"


class EscalationTarget(models.Model):
    class Kind(models.TextChoices):
        ROTATION_CURRENT = "rotation_current", "Current holder of a rotation"
        ROTATION_NEXT = "rotation_next", "Next holder of a rotation"
        USER = "user", "A user"
        TEAM_MANAGERS = "team_managers", "The team's managers"

    step = models.ForeignKey(EscalationStep, on_delete=models.CASCADE, related_name="targets")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    rotation = models.ForeignKey("oncall.Rotation", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=["rotation_current", "rotation_next"], rotation__isnull=False, user__isnull=True))
                | Q(kind="user", user__isnull=False, rotation__isnull=True)
                | Q(kind="team_managers", user__isnull=True, rotation__isnull=True),
                name="oncall_escalationtarget_fields_match_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.rotation or self.user or ''}"
