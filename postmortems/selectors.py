"""Reads that do work: lists with their joins, visibility and edit rights, overdue items, reminder digests."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from incidents.models import Incident, IncidentEvent, IncidentRoleAssignment
from oncall import roles
from postmortems.models import OPEN_ITEM_STATUSES, ActionItem, Postmortem, PostmortemEvent

# Kinds of incident events that make the pre-filled postmortem timeline (reminders and edits are noise).
KEY_EVENT_KINDS = (
    IncidentEvent.Kind.DECLARED,
    IncidentEvent.Kind.ACKNOWLEDGED,
    IncidentEvent.Kind.MITIGATED,
    IncidentEvent.Kind.RESOLVED,
    IncidentEvent.Kind.REOPENED,
    IncidentEvent.Kind.SEVERITY_CHANGED,
    IncidentEvent.Kind.ROLE_ASSIGNED,
    IncidentEvent.Kind.STATUS_UPDATE,
    IncidentEvent.Kind.NOTE,
)
DIGEST_HORIZON = timedelta(days=2)


def org_today() -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(settings.FIREBREAK_REPORT_TIME_ZONE)).date()


def is_manager(user: AbstractBaseUser | None) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=roles.MANAGERS).exists()


def _incidents_prefetch() -> Prefetch:
    return Prefetch("incidents", queryset=Incident.objects.select_related("service__team").order_by("declared_at"))


def postmortem_list() -> QuerySet[Postmortem]:
    """Postmortems with their owner and incidents (and each incident's service and team): constant queries."""
    return (
        Postmortem.objects.select_related("owner")
        .prefetch_related(_incidents_prefetch())
        .order_by("-created_at", "-id")
    )


def postmortem_detail() -> QuerySet[Postmortem]:
    return Postmortem.objects.select_related("owner").prefetch_related(
        _incidents_prefetch(),
        "factors",
        Prefetch(
            "action_items",
            queryset=ActionItem.objects.select_related("owner", "team", "runbook").order_by("due_on", "id"),
        ),
        "revisions",
        Prefetch("reviews", queryset=_reviews()),
    )


def _reviews():
    from postmortems.models import PostmortemReview

    return PostmortemReview.objects.select_related("reviewer").order_by("created_at", "id")


def _responded_incidents(user: AbstractBaseUser) -> QuerySet[Incident]:
    """Incidents the user worked: commander, communications lead, any role held, or an action on the timeline."""
    return Incident.objects.filter(
        Q(commander=user)
        | Q(comms_lead=user)
        | Q(pk__in=IncidentRoleAssignment.objects.filter(user=user).values("incident_id"))
        | Q(pk__in=IncidentEvent.objects.filter(actor=user).values("incident_id"))
    )


def postmortems_editable_by(user: AbstractBaseUser) -> QuerySet[Postmortem]:
    """Managers edit every postmortem; others those they own or whose incidents they responded to."""
    if is_manager(user):
        return Postmortem.objects.all()
    return Postmortem.objects.filter(
        Q(owner=user) | Q(incidents__in=_responded_incidents(user).values("pk"))
    ).distinct()


def postmortems_visible_to(user: AbstractBaseUser) -> QuerySet[Postmortem]:
    """Everyone signed in reads postmortems published at least once; drafts only their editors."""
    if is_manager(user):
        return Postmortem.objects.all()
    editable = postmortems_editable_by(user).values("pk")
    return Postmortem.objects.filter(Q(published_at__isnull=False) | Q(pk__in=editable))


def user_can_edit_postmortem(user: AbstractBaseUser, postmortem: Postmortem) -> bool:
    if not user.has_perm("postmortems.change_postmortem"):
        return False
    return postmortems_editable_by(user).filter(pk=postmortem.pk).exists()


def user_can_edit_action_item(user: AbstractBaseUser, item: ActionItem) -> bool:
    """Managers edit any action item; responders their own."""
    if not user.has_perm("postmortems.change_actionitem"):
        return False
    return is_manager(user) or item.owner_id == user.pk


def incident_key_events(*, incident: Incident) -> QuerySet[IncidentEvent]:
    return (
        IncidentEvent.objects.filter(incident=incident, kind__in=KEY_EVENT_KINDS)
        .select_related("actor")
        .order_by("at", "id")
    )


def people_names() -> list[str]:
    """Full names and usernames of active users, for the "person named in a contributing factor" rule."""
    names: list[str] = []
    for first, last, username in (
        get_user_model().objects.filter(is_active=True).values_list("first_name", "last_name", "username")
    ):
        full = f"{first} {last}".strip()
        if first and last:
            names.append(full)
        names.append(username)
    return names


def postmortem_history(*, postmortem: Postmortem) -> QuerySet[PostmortemEvent]:
    return PostmortemEvent.objects.filter(postmortem=postmortem).select_related("actor").order_by("at", "id")


def action_item_list() -> QuerySet[ActionItem]:
    return ActionItem.objects.select_related("owner", "team", "postmortem", "runbook").order_by("due_on", "id")


def action_items_overdue(*, today: date | None = None) -> QuerySet[ActionItem]:
    """Open or in-progress items whose due date is before today (the org's local date)."""
    today = today or org_today()
    return action_item_list().filter(status__in=OPEN_ITEM_STATUSES, due_on__lt=today)


def action_items_due_within(*, days: int, today: date | None = None) -> QuerySet[ActionItem]:
    today = today or org_today()
    return action_item_list().filter(
        status__in=OPEN_ITEM_STATUSES, due_on__gte=today, due_on__lte=today + timedelta(days=days)
    )


@dataclass
class Digest:
    """What one person is reminded of on one day."""

    user_id: int
    overdue_items: list[ActionItem] = field(default_factory=list)
    due_soon_items: list[ActionItem] = field(default_factory=list)
    late_postmortems: list[Postmortem] = field(default_factory=list)
    due_soon_postmortems: list[Postmortem] = field(default_factory=list)


def reminder_digests(*, now: datetime | None = None) -> list[Digest]:
    """Per owner: action items overdue or due within two days, and unpublished postmortems late or due within
    two days. Four queries whatever the number of people."""
    now = now or timezone.now()
    today = now.astimezone(zoneinfo.ZoneInfo(settings.FIREBREAK_REPORT_TIME_ZONE)).date()
    digests: dict[int, Digest] = defaultdict(lambda: Digest(user_id=0))

    def digest(user_id: int) -> Digest:
        entry = digests[user_id]
        entry.user_id = user_id
        return entry

    items = action_item_list().filter(
        status__in=OPEN_ITEM_STATUSES, owner__isnull=False, due_on__lte=today + DIGEST_HORIZON
    )
    for item in items:
        target = digest(item.owner_id)
        (target.overdue_items if item.due_on < today else target.due_soon_items).append(item)
    postmortems = (
        Postmortem.objects.filter(owner__isnull=False, due_at__lte=now + DIGEST_HORIZON)
        .exclude(status=Postmortem.Status.PUBLISHED)
        .order_by("due_at", "id")
    )
    for postmortem in postmortems:
        target = digest(postmortem.owner_id)
        (target.late_postmortems if postmortem.due_at < now else target.due_soon_postmortems).append(postmortem)
    return sorted(digests.values(), key=lambda entry: entry.user_id)
