"""How on-call messages show people, times and periods: in the rotation's (or person's) zone, the zone named,
never a raw ISO timestamp, range repr or internal value."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from oncall import clock


def when(instant: datetime, tz_name: str) -> str:
    """'Tue 2026-12-15 09:00 CET'."""
    return instant.astimezone(clock.zone(tz_name)).strftime("%a %Y-%m-%d %H:%M %Z")


def period(start: datetime | None, end: datetime | None, tz_name: str) -> str:
    """'from Tue 2026-12-15 09:00 CET to Wed 2026-12-16 09:00 CET (Europe/Berlin)'."""
    if start is None and end is None:
        return ""
    parts = []
    if start is not None:
        parts.append(f"from {when(start, tz_name)}")
    if end is not None:
        parts.append(f"to {when(end, tz_name)}")
    return " ".join(parts) + f" ({tz_name})"


def duration(value: timedelta) -> str:
    """'12 h', '1 h 30 min', '2 days'."""
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day" + ("s" if days != 1 else ""))
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def person(user) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def person_zone(user) -> str:
    """The zone a person's times are shown in: their first team's (by name), else the server's."""
    if user is not None and user.pk is not None:
        teams = sorted((m.team for m in user.team_memberships.all()), key=lambda team: team.name)  # prefetched in lists
        if teams:
            return teams[0].timezone
    return settings.TIME_ZONE or "UTC"
