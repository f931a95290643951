"""Models of the oncall app, split by topic (each file stays under ~300 lines)."""

from oncall.models.core import ContactMethod, Notification, Team, TeamMembership, validate_time_zone
from oncall.models.escalation import EscalationPolicy, EscalationStep, EscalationTarget
from oncall.models.records import CalendarFeed, Handoff, ScheduleIssue
from oncall.models.schedule import (
    Holiday,
    HolidayCalendar,
    Override,
    Rotation,
    RotationMember,
    Shift,
    Swap,
    Unavailability,
    new_ical_token,
)

__all__ = [
    "CalendarFeed",
    "ContactMethod",
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Handoff",
    "Holiday",
    "HolidayCalendar",
    "Notification",
    "Override",
    "Rotation",
    "RotationMember",
    "ScheduleIssue",
    "Shift",
    "Swap",
    "Team",
    "TeamMembership",
    "Unavailability",
    "new_ical_token",
    "validate_time_zone",
]
