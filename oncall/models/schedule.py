"""Rotations and their materialised timeline: members, shifts, overrides, swaps, unavailability, handoffs."""

from __future__ import annotations

import secrets
from datetime import time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q

from oncall import formatting
from oncall.models.core import Team, validate_time_zone


def new_ical_token() -> str:
    return secrets.token_urlsafe(32)


class HolidayCalendar(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    calendar = models.ForeignKey(HolidayCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="oncall_holiday_unique_date")]

    def __str__(self) -> str:
        return f"{self.date}: {self.name}"


class Rotation(models.Model):
    class Layer(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"

    class Unit(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        BALANCED = "balanced", "Balanced (fewest weighted hours)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=100)
    layer = models.CharField(max_length=16, choices=Layer.choices, default=Layer.PRIMARY)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.WEEKLY)
    count = models.PositiveSmallIntegerField(default=1, help_text="Units per slot; a slot is at most 7 days")
    handoff_time = models.TimeField(default=time(9, 0), help_text="Local wall-clock time of each handoff")
    handoff_weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(6)], help_text="Weekly rotations: 0 = Monday … 6 = Sunday"
    )
    anchor_date = models.DateField(help_text="Local date of slot 0 (weekly: moved forward to the handoff weekday)")
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    min_rest = models.DurationField(default=timedelta(hours=12), help_text="Soft rule: rest between two shifts")
    max_consecutive_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(7)]
    )
    weekend_weight = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("1.5"))
    holiday_weight = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("2.0"))
    holiday_calendar = models.ForeignKey(
        HolidayCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="rotations"
    )
    horizon = models.DurationField(default=timedelta(weeks=8), help_text="How far ahead shifts are materialised")
    fairness_horizon = models.DurationField(default=timedelta(weeks=12))
    ical_token = models.CharField(max_length=64, unique=True, default=new_ical_token, editable=False)
    plan_version = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["team__name", "layer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="oncall_rotation_unique_name"),
            models.CheckConstraint(
                condition=Q(count__gte=1)
                & (
                    Q(unit="hourly", count__lte=168)
                    | Q(unit="daily", count__lte=7)
                    | Q(unit="weekly", count=1, handoff_weekday__isnull=False)
                ),
                name="oncall_rotation_slot_at_most_7_days",
                violation_error_message="A slot is at most 7 days (weekly rotations need a handoff weekday).",
            ),
            models.CheckConstraint(
                condition=Q(max_consecutive_days__gte=1, max_consecutive_days__lte=7),
                name="oncall_rotation_max_consecutive_days_1_7",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} / {self.name} ({self.get_layer_display()})"

    def clean(self) -> None:
        if self.unit == self.Unit.WEEKLY and self.handoff_weekday is None:
            raise ValidationError({"handoff_weekday": "A weekly rotation needs a handoff weekday."})
        nominal_days = {"hourly": self.count / 24, "daily": self.count, "weekly": 7 * self.count}[self.unit]
        if nominal_days > 7:
            raise ValidationError({"count": "A slot is at most 7 days."})
        if nominal_days > self.max_consecutive_days:
            raise ValidationError(
                {"max_consecutive_days": "One slot is longer than the maximum consecutive days allowed."}
            )

    @property
    def nominal_slot(self) -> timedelta:
        return {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}[
            self.unit
        ] * self.count


class RotationMember(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rotation_memberships")
    position = models.PositiveSmallIntegerField(default=0)
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rotation", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "user"], name="oncall_rotationmember_unique_user"),
            models.CheckConstraint(
                condition=Q(active_from__isnull=True)
                | Q(active_until__isnull=True)
                | Q(active_from__lt=F("active_until")),
                name="oncall_rotationmember_active_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{formatting.person(self.user) if self.user_id else 'someone'} #{self.position} in {self.rotation}"

    def _active_order_broken(self) -> bool:
        return bool(self.active_from and self.active_until and self.active_from >= self.active_until)

    def clean(self) -> None:
        if self._active_order_broken():
            raise ValidationError({"active_until": "Active until must be after active from."})

    def validate_constraints(self, exclude=None) -> None:
        if self._active_order_broken():  # clean() says so, naming the field, instead of the constraint's name
            exclude = {*(exclude or ()), "active_from"}
        super().validate_constraints(exclude=exclude)


class Shift(models.Model):
    """One piece of the effective timeline of a rotation, in UTC. `slot` is the rotation slot it belongs to;
    `key` names the piece within the rotation (stable across re-plans, so the iCal UID is too)."""

    class Source(models.TextChoices):
        GENERATED = "generated", "Generated"
        OVERRIDE = "override", "Override"
        SWAP = "swap", "Swap"
        GAP = "gap", "Gap (nobody)"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="shifts")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", editable=False)
    layer = models.CharField(max_length=16, choices=Rotation.Layer.choices, editable=False)
    slot = models.IntegerField()
    key = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="shifts"
    )
    planned_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period = DateTimeRangeField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.GENERATED)
    override = models.ForeignKey("Override", null=True, blank=True, on_delete=models.SET_NULL, related_name="shifts")
    sequence = models.PositiveIntegerField(default=0, help_text="iCal SEQUENCE: grows on every re-plan")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rotation", "period"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "key"], name="oncall_shift_unique_key"),
            models.CheckConstraint(condition=Q(period__isempty=False), name="oncall_shift_period_not_empty"),
            models.CheckConstraint(
                condition=Q(source="gap", user__isnull=True) | (~Q(source="gap") & Q(user__isnull=False)),
                name="oncall_shift_gap_has_no_user",
            ),
            ExclusionConstraint(
                name="oncall_shift_no_overlap_in_rotation",
                expressions=[("rotation", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                violation_error_message="Shifts of one rotation cannot overlap.",
            ),
            ExclusionConstraint(
                name="oncall_shift_no_primary_and_secondary",
                expressions=[
                    ("team", RangeOperators.EQUAL),
                    ("user", RangeOperators.EQUAL),
                    ("period", RangeOperators.OVERLAPS),
                    ("layer", RangeOperators.NOT_EQUAL),
                ],
                violation_error_message="Nobody is primary and secondary of one team at once.",
            ),
        ]
        indexes = [
            # who is on call at t (the gist index of the overlap constraint serves `period @> t` per rotation);
            # a person's upcoming shifts (iCal per person, reminders)
            models.Index(fields=["user", "slot"], name="oncall_shift_user_slot_idx"),
            # the next shifts of some rotations (`period__startswith__gt=t`: escalation targets, who is on call next)
            # without reading every shift of the year (bench/RESULTS.md, on-call)
            models.Index(
                F("rotation"),
                Func(F("period"), function="lower", output_field=models.DateTimeField()),
                name="oncall_shift_rot_start_idx",
            ),
        ]

    def __str__(self) -> str:
        holder = formatting.person(self.user) if self.user_id else "nobody (gap)"
        when = formatting.period(self.period.lower, self.period.upper, self.rotation.timezone) if self.period else ""
        return f"{self.rotation}: {holder} {when}".strip()

    def save(self, *args, **kwargs) -> None:
        self.team_id = self.rotation.team_id
        self.layer = self.rotation.layer
        super().save(*args, **kwargs)


class Override(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="overrides")
    period = DateTimeRangeField()
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period"]
        constraints = [
            ExclusionConstraint(
                name="oncall_override_no_overlap",
                expressions=[("rotation", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=Q(cancelled_at__isnull=True),
                violation_error_message="Overrides of one rotation cannot overlap.",
            ),
        ]

    def __str__(self) -> str:
        who = formatting.person(self.user) if self.user_id else "someone"
        text = f"{who} covers {self.rotation}" if self.rotation_id else f"{who} covers a rotation"
        if self.period and self.rotation_id:
            text += " " + formatting.period(self.period.lower, self.period.upper, self.rotation.timezone)
        return text


class Swap(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="swaps")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    counterparty = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    requester_slot = models.IntegerField(help_text="The requester's slot, given to the counterparty")
    counterparty_slot = models.IntegerField(help_text="The counterparty's slot, given to the requester")
    plan_snapshot = models.JSONField(default=dict, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(requester=F("counterparty")), name="oncall_swap_two_people"),
        ]

    def __str__(self) -> str:
        return f"swap between {formatting.person(self.requester)} and {formatting.person(self.counterparty)}"


class Unavailability(models.Model):
    class Kind(models.TextChoices):
        VACATION = "vacation", "Vacation"
        SICK = "sick", "Sick leave"
        OTHER = "other", "Other"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="unavailabilities")
    period = DateTimeRangeField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.VACATION)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period"]
        verbose_name_plural = "unavailabilities"
        constraints = [
            models.CheckConstraint(condition=Q(period__isempty=False), name="oncall_unavailability_not_empty"),
        ]

    def __str__(self) -> str:
        who = formatting.person(self.user) if self.user_id else "someone"
        text = f"{who}: {self.get_kind_display()}"
        if self.period:
            text += " " + formatting.period(self.period.lower, self.period.upper, formatting.person_zone(self.user))
        return text
