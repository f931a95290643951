"""Reads that do work: lists with their joins, visibility and edit rights, overdue items, reminder digests."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, When
from django.db.models.fields.json import KT
from django.utils import timezone

from incidents.models import Incident, IncidentEvent, IncidentRoleAssignment
from oncall import roles
from postmortems import blameless
from postmortems.models import (
    OPEN_ITEM_STATUSES,
    SECTIONS,
    ActionItem,
    Postmortem,
    PostmortemEvent,
    PostmortemRevision,
)

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


# --- who reads what -------------------------------------------------------------------------------------------
#
# People *involved* in a postmortem are those who may edit it: its owner, the responders of its incidents (which
# includes whoever submitted it) and managers (its reviewers). They see the working text. Everyone else is a
# *reader*: while an amendment is under way (the postmortem was published, and is now in review or back in
# draft), a reader sees the last published revision, not the work in progress.


def user_is_involved(user: AbstractBaseUser, postmortem: Postmortem) -> bool:
    return is_manager(user) or postmortems_editable_by(user).filter(pk=postmortem.pk).exists()


def postmortem_revision_for_reader(*, user: AbstractBaseUser, postmortem: Postmortem) -> PostmortemRevision | None:
    """The revision a reader sees instead of the working text: the latest published one while an amendment is
    under way and the user is not involved; None when the current text is what the user sees."""
    if postmortem.status == Postmortem.Status.PUBLISHED or postmortem.published_at is None:
        return None
    if user_is_involved(user, postmortem):
        return None
    return PostmortemRevision.objects.filter(postmortem=postmortem).order_by("-number").first()


def with_title_for(queryset: QuerySet[Postmortem], user: AbstractBaseUser) -> QuerySet[Postmortem]:
    """Annotate `shown_title`: the working title for the involved and for published postmortems, the title of
    the last published revision for readers during an amendment. One subquery, no extra query per row."""
    latest_title = Subquery(
        PostmortemRevision.objects.filter(postmortem=OuterRef("pk"))
        .order_by("-number")
        .values(title=KT("content__title"))[:1]
    )
    if is_manager(user):
        return queryset.annotate(shown_title=F("title"))
    involved = Q(owner=user) | Exists(
        Postmortem.incidents.through.objects.filter(
            postmortem_id=OuterRef("pk"), incident_id__in=_responded_incidents(user).values("pk")
        )
    )
    return queryset.annotate(
        shown_title=Case(
            When(involved, then=F("title")),
            When(Q(status=Postmortem.Status.PUBLISHED) | Q(published_at__isnull=True), then=F("title")),
            default=latest_title,
            output_field=CharField(),
        )
    )


def revision_lint_warnings(revision: PostmortemRevision) -> list[dict[str, object]]:
    """The blameless-language warnings of a published revision (computed: revisions store only the text)."""
    content = revision.content
    return blameless.check_as_dicts(
        sections={name: (content.get("sections") or {}).get(name, "") for name in SECTIONS},
        factors=[factor.get("description", "") for factor in content.get("contributing_factors") or []],
        people=people_names(),
    )


def postmortem_revisions(*, postmortem: Postmortem) -> QuerySet[PostmortemRevision]:
    """A postmortem's published revisions, oldest first, with who published each: two queries in all."""
    return PostmortemRevision.objects.filter(postmortem=postmortem).select_related("published_by").order_by("number")


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
    two days (never a withdrawn one). Four queries whatever the number of people."""
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
        .exclude(status__in=(Postmortem.Status.PUBLISHED, Postmortem.Status.WITHDRAWN))
        .order_by("due_at", "id")
    )
    for postmortem in postmortems:
        target = digest(postmortem.owner_id)
        (target.late_postmortems if postmortem.due_at < now else target.due_soon_postmortems).append(postmortem)
    return sorted(digests.values(), key=lambda entry: entry.user_id)
