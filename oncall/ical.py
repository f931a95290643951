"""iCal feeds (RFC 5545, built with the icalendar library): one event per effective shift, UTC times, a UID
stable per shift piece (rotation + key) and a SEQUENCE that grows whenever the piece is re-planned."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from icalendar import Calendar, Event

from oncall.models import Rotation, Shift

PAST = timedelta(days=30)


def shift_uid(shift: Shift) -> str:
    return f"firebreak-shift-{shift.rotation_id}-{shift.key}@{settings.FIREBREAK_BASE_URL.split('://')[-1]}"


def _calendar(name: str, shifts, *, label_holder: bool) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Firebreak//On-call//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for shift in shifts:
        event = Event()
        event.add("uid", shift_uid(shift))
        event.add("dtstart", shift.period.lower)
        event.add("dtend", shift.period.upper)
        event.add("dtstamp", shift.updated_at)
        event.add("sequence", shift.sequence)
        if shift.user_id is None:
            summary = f"GAP — nobody on call: {shift.rotation}"
        elif label_holder:
            summary = f"{shift.user} on call ({shift.rotation.name}, {shift.get_layer_display()})"
        else:
            summary = f"On call: {shift.rotation}"
        if shift.source == Shift.Source.OVERRIDE:
            summary += " [override]"
        event.add("summary", summary)
        calendar.add_component(event)
    return calendar.to_ical()


def rotation_feed(*, rotation: Rotation, now: datetime) -> bytes:
    shifts = (
        Shift.objects.filter(rotation=rotation, period__endswith__gt=now - PAST)
        .select_related("rotation__team", "user")
        .order_by("period")
    )
    return _calendar(str(rotation), shifts, label_holder=True)


def person_feed(*, user, now: datetime) -> bytes:
    shifts = (
        Shift.objects.filter(user=user, period__endswith__gt=now - PAST)
        .select_related("rotation__team", "user")
        .order_by("period")
    )
    return _calendar(f"On call: {user}", shifts, label_holder=False)
