from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from oncall.models import Notification, TeamMembership


def notifications_due(*, grace: timedelta = timedelta(seconds=60), limit: int = 500) -> list[int]:
    """Ids of pending notifications whose attempt is overdue by more than `grace`: their queued task was
    lost (broker down, worker killed) and the sweep must queue them again."""
    cutoff = timezone.now() - grace
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def team_managers(*, team_id: int) -> QuerySet:
    return TeamMembership.objects.filter(team_id=team_id, role=TeamMembership.Role.MANAGER).select_related("user")
