"""Every write that does postmortem business. One transaction and one audit event per state change;
notifications go through the outbox (oncall.services.notification_enqueue), delivered after commit."""

from __future__ import annotations

import math
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from incidents.models import Incident, SeverityPolicy
from incidents.services import incident_add_note
from oncall import roles
from oncall.errors import DomainError
from oncall.selectors import team_managers
from oncall.services import notification_enqueue
from postmortems import blameless, selectors
from postmortems.models import (
    CONTENT_FIELDS,
    REQUIRED_SECTIONS,
    SECTIONS,
    ActionItem,
    ContributingFactor,
    Postmortem,
    PostmortemEvent,
    PostmortemReview,
    PostmortemRevision,
)

DEFAULT_DUE_DAYS = {ActionItem.Priority.PRIORITY: 28, ActionItem.Priority.IMPROVEMENT: 90}
EDITABLE_FIELDS = ("title", *SECTIONS)
# what people read in messages instead of the internal names
FIELD_LABELS = {
    "title": "Title",
    **SECTIONS,
    "owner": "Owner",
    "due_at": "Due",
    "contributing_factors": "Contributing factors",
    "incidents": "Incidents",
    "action_items": "Action items",
}

# --- helpers -----------------------------------------------------------------------------------------------


def _user(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if actor is not None and actor.is_authenticated else None


def _event(
    *,
    kind: str,
    actor: AbstractBaseUser | None,
    postmortem: Postmortem | None = None,
    action_item: ActionItem | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> PostmortemEvent:
    return PostmortemEvent.objects.create(
        postmortem=postmortem,
        action_item=action_item,
        at=timezone.now(),
        kind=kind,
        actor=_user(actor),
        message=message,
        data=data or {},
    )


def _locked(postmortem: Postmortem) -> Postmortem:
    return Postmortem.objects.select_for_update().get(pk=postmortem.pk)


def postmortem_url(postmortem: Postmortem) -> str:
    return f"{settings.FIREBREAK_BASE_URL}/admin/postmortems/postmortem/{postmortem.pk}/change/"


def _notify(*, dedupe_key: str, user: AbstractBaseUser | None, subject: str, body: str) -> bool:
    """One e-mail per dedupe key, through the outbox. Returns whether it was queued now."""
    if user is None:
        return False
    html = "".join(f"<p>{escape(paragraph)}</p>" for paragraph in body.split("\n\n") if paragraph.strip())
    _, created = notification_enqueue(
        dedupe_key=dedupe_key, user=user, subject=subject, body=body, payload={"html": html}
    )
    return created


def _reviewers(postmortem: Postmortem) -> list[AbstractBaseUser]:
    """Managers of the teams of the postmortem's incidents, else everyone in the Managers group."""
    team_ids = {incident.service.team_id for incident in postmortem.incidents.select_related("service")}
    users: dict[int, AbstractBaseUser] = {}
    for team_id in sorted(team_ids):
        for membership in team_managers(team_id=team_id):
            users[membership.user.pk] = membership.user
    if not users:
        for user in get_user_model().objects.filter(groups__name=roles.MANAGERS, is_active=True).order_by("pk"):
            users[user.pk] = user
    return [user for user in users.values() if user.pk != postmortem.owner_id]


def _team_zone(incident: Incident) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(incident.service.team.timezone or "UTC")


def _local(value: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if value else "—"


def format_time(value: datetime | None) -> str:
    """A time for people: in the org's zone (FIREBREAK_REPORT_TIME_ZONE), with the zone's name."""
    return _local(value, zoneinfo.ZoneInfo(settings.FIREBREAK_REPORT_TIME_ZONE))


def postmortem_due_at(*, incident: Incident, policy: SeverityPolicy) -> datetime:
    """End of the due day: the local resolve date (team zone) + the policy deadline, rounded up to days."""
    zone = _team_zone(incident)
    resolved_on = incident.resolved_at.astimezone(zone).date()
    days = math.ceil(policy.postmortem_deadline / timedelta(days=1))
    return datetime.combine(resolved_on + timedelta(days=days), time.max, tzinfo=zone)


def _prefilled_timeline(incident: Incident) -> str:
    zone = _team_zone(incident)
    lines = [f"Times in {zone.key}. Pre-filled from the timeline of {incident.ref}; edit freely.", ""]
    for event in selectors.incident_key_events(incident=incident):
        text = event.get_kind_display()
        if event.message:
            text += f": {event.message}"
        if event.actor is not None:
            text += f" ({event.actor.get_username()})"
        lines.append(f"- **{_local(event.at, zone)}** — {text}")
    return "\n".join(lines)


def _prefilled_impact(incident: Incident) -> str:
    zone = _team_zone(incident)
    lines = [
        f"- Incident: {incident.ref} {incident.title} ({incident.severity}, service {incident.service.name})",
        f"- Impact from {_local(incident.started_at, zone)} to {_local(incident.resolved_at, zone)}",
    ]
    if incident.resolved_at:
        minutes = (incident.resolved_at - incident.started_at).total_seconds() / 60
        detect = (incident.detected_at - incident.started_at).total_seconds() / 60
        lines.append(f"- Duration: {minutes:.0f} min; detected after {detect:.0f} min")
    lines.append("- Customers affected: _who, how many, what they saw_")
    return "\n".join(lines)


def _lint(postmortem: Postmortem) -> list[dict[str, object]]:
    factors = [] if postmortem.pk is None else list(postmortem.factors.values_list("description", flat=True))
    return blameless.check_as_dicts(sections=postmortem.sections(), factors=factors, people=selectors.people_names())


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def _labels(names) -> str:
    return ", ".join(field_label(name).lower() for name in names)


def _withdraw_approvals(postmortem: Postmortem, *, actor: AbstractBaseUser | None, changed: list[str]) -> None:
    """The content (CONTENT_FIELDS, contributing factors, incidents) changed while in review: the approvals of
    the current round covered other text, so they no longer count. A new round starts (publishing needs a new
    approval), the history says whose approval was withdrawn and why, and those reviewers are told.

    Called inside the editing service's transaction, with the postmortem locked."""
    if postmortem.status != Postmortem.Status.IN_REVIEW:
        return
    approvals = list(
        postmortem.reviews.filter(round=postmortem.review_round, decision=PostmortemReview.Decision.APPROVE)
        .select_related("reviewer")
        .order_by("created_at", "id")
    )
    if not approvals:
        return
    postmortem.review_round += 1
    postmortem.save(update_fields=["review_round", "updated_at"])
    names = ", ".join(review.reviewer.get_username() for review in approvals)
    what = _labels(changed)
    _event(
        postmortem=postmortem,
        kind=PostmortemEvent.Kind.APPROVAL_WITHDRAWN,
        actor=actor,
        message=f"Approval by {names} withdrawn: {what} changed after it. Still in review; it needs a new approval.",
        data={"round": postmortem.review_round, "reviews": [review.pk for review in approvals], "fields": changed},
    )
    for review in approvals:
        _notify(
            dedupe_key=f"postmortem:{postmortem.pk}:approval-withdrawn:{postmortem.review_round}:{review.reviewer_id}",
            user=review.reviewer,
            subject=f"Approval withdrawn: {postmortem.ref} {postmortem.title}",
            body=f"{postmortem.ref} changed after you approved it ({what}), so your approval no longer counts. "
            f"It is still in review and needs a new approval before it is published.\n\n{postmortem_url(postmortem)}",
        )


def _relint(postmortem: Postmortem) -> None:
    postmortem.lint_warnings = _lint(postmortem)
    postmortem.save(update_fields=["lint_warnings", "updated_at"])


# --- creation ----------------------------------------------------------------------------------------------


def postmortem_create(
    *,
    title: str,
    actor: AbstractBaseUser | None,
    incidents: list[Incident] | None = None,
    owner: AbstractBaseUser | None = None,
    due_at: datetime | None = None,
    **sections: str,
) -> Postmortem:
    """A postmortem written by hand (one may cover several incidents)."""
    if not (title or "").strip():
        raise ValidationError({"title": ["A title is required."]})
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError({name: [f"{field_label(name)} is not a section of a postmortem."]})
    with transaction.atomic():
        postmortem = Postmortem.objects.create(title=title.strip(), owner=owner, due_at=due_at, **sections)
        if incidents:
            postmortem.incidents.set(incidents)
        postmortem.lint_warnings = _lint(postmortem)
        postmortem.save(update_fields=["lint_warnings"])
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.CREATED,
            actor=actor,
            data={"incidents": [incident.ref for incident in incidents or []]},
        )
    return postmortem


def postmortem_draft_for_incident(*, incident: Incident) -> Postmortem | None:
    """The draft created when an incident whose severity requires a postmortem is resolved.

    Idempotent: an incident already covered by a postmortem gets no second one (resolve, reopen, resolve)."""
    policy = SeverityPolicy.objects.filter(severity=incident.severity).first()
    if policy is None or not policy.postmortem_required or incident.resolved_at is None:
        return None
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update(of=("self",))
            .select_related("service__team", "commander")
            .get(pk=incident.pk)
        )
        if incident.postmortems.exists():
            return None
        postmortem = Postmortem.objects.create(
            title=f"{incident.ref}: {incident.title}"[:200],
            owner=incident.commander,
            due_at=postmortem_due_at(incident=incident, policy=policy),
            summary=incident.summary,
            impact=_prefilled_impact(incident),
            timeline=_prefilled_timeline(incident),
        )
        postmortem.incidents.add(incident)
        postmortem.lint_warnings = _lint(postmortem)
        postmortem.save(update_fields=["lint_warnings"])
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.CREATED,
            actor=None,
            message=f"Draft created when {incident.ref} was resolved",
            data={"incidents": [incident.ref], "due_at": postmortem.due_at.isoformat()},
        )
        zone = _team_zone(incident)
        body = (
            f"{incident.ref} {incident.title} ({incident.severity}) was resolved. A blameless postmortem is due by "
            f"the end of {postmortem.due_at.astimezone(zone):%Y-%m-%d} ({zone.key}).\n\n"
            f"The draft has the timeline and impact pre-filled: {postmortem_url(postmortem)}"
        )
        recipients = (
            [incident.commander]
            if incident.commander
            else [membership.user for membership in team_managers(team_id=incident.service.team_id)]
        )
        for user in recipients:
            _notify(
                dedupe_key=f"postmortem:{postmortem.pk}:created:{user.pk}",
                user=user,
                subject=f"Postmortem draft for {incident.ref}",
                body=body,
            )
    return postmortem


def on_incident_transition(incident: Incident, kind: str) -> None:
    """Transition listener registered with incidents (runs inside the incident's transaction)."""
    if kind == "resolved":
        postmortem_draft_for_incident(incident=incident)
    elif kind == "severity_changed":
        postmortems_follow_severity(incident=incident)


def _requires_postmortem(severity: str) -> bool:
    policy = SeverityPolicy.objects.filter(severity=severity).first()
    return policy is not None and policy.postmortem_required


def _submitted(postmortem: Postmortem) -> bool:
    """Submitted for review at least once (or published): from then on the postmortem stays required."""
    return postmortem.review_round > 0 or postmortem.published_at is not None


def postmortems_follow_severity(*, incident: Incident) -> list[Postmortem]:
    """The incident's severity changed (runs inside incidents' transaction, after the severity event).

    The rule (docs/postmortems.md): when no incident a postmortem covers requires one any more, a draft nothing
    was ever submitted for is withdrawn (status withdrawn, an event in its history and a note on each
    incident's timeline); a postmortem submitted at least once stays, and stays required to close the incident.
    When the severity requires one again, a withdrawn draft is restored; a resolved incident without any
    postmortem gets its draft as if it had been resolved now. Returns the postmortems withdrawn or restored."""
    severity = incident.severity
    changed: list[Postmortem] = []
    with transaction.atomic():
        for postmortem in Postmortem.objects.select_for_update().filter(incidents=incident).order_by("pk"):
            covered = list(postmortem.incidents.order_by("pk"))
            required = any(_requires_postmortem(other.severity) for other in covered)
            if not required and postmortem.status == Postmortem.Status.DRAFT and not _submitted(postmortem):
                postmortem.status = Postmortem.Status.WITHDRAWN
                message = (
                    f"Withdrawn: {incident.ref} is now {severity}, which needs no postmortem, and nothing was "
                    "submitted for review."
                )
                kind = PostmortemEvent.Kind.WITHDRAWN
            elif required and postmortem.status == Postmortem.Status.WITHDRAWN:
                postmortem.status = Postmortem.Status.DRAFT
                message = f"Restored as a draft: {incident.ref} is now {severity}, which needs a postmortem."
                kind = PostmortemEvent.Kind.RESTORED
            else:
                continue
            postmortem.save(update_fields=["status", "updated_at"])
            _event(postmortem=postmortem, kind=kind, actor=None, message=message, data={"severity": severity})
            for other in covered:
                incident_add_note(
                    incident=other, actor=None, message=f"{postmortem.ref} {message[0].lower()}{message[1:]}"
                )
            changed.append(postmortem)
    if (
        _requires_postmortem(severity)
        and incident.resolved_at is not None
        and incident.status != Incident.Status.CANCELLED
    ):
        postmortem_draft_for_incident(incident=incident)
    return changed


def require_published_postmortem(incident: Incident) -> None:
    """Close guard: an incident closes only once its postmortem is published when its severity requires one,
    or when a postmortem of it was submitted for review (it stays required after the severity is lowered)."""
    postmortems = list(incident.postmortems.exclude(status=Postmortem.Status.WITHDRAWN).order_by("pk"))
    if not _requires_postmortem(incident.severity) and not any(_submitted(pm) for pm in postmortems):
        return
    if any(postmortem.published_at is not None for postmortem in postmortems):
        return
    if postmortems:
        states = ", ".join(f"PM-{pm.pk} is {pm.get_status_display().lower()}" for pm in postmortems)
        message = f"{incident.ref} cannot be closed until its postmortem is published ({states})."
    else:
        message = f"{incident.ref} cannot be closed: {incident.severity} needs a published postmortem and it has none."
    raise DomainError(message, code="postmortem_not_published", field="postmortem")


def postmortem_link_incident(
    *, postmortem: Postmortem, incident: Incident, actor: AbstractBaseUser | None
) -> Postmortem:
    """Let one postmortem cover another incident too."""
    with transaction.atomic():
        postmortem = _locked(postmortem)
        if postmortem.incidents.filter(pk=incident.pk).exists():
            return postmortem
        _refuse_if_frozen(postmortem)
        postmortem.incidents.add(incident)
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.INCIDENT_LINKED,
            actor=actor,
            message=incident.ref,
            data={"incident": incident.ref},
        )
        _withdraw_approvals(postmortem, actor=actor, changed=["incidents"])
    return postmortem


# --- editing -----------------------------------------------------------------------------------------------


def _refuse_if_frozen(postmortem: Postmortem) -> None:
    """A published postmortem changes only through an amendment; a withdrawn one not at all."""
    if postmortem.status == Postmortem.Status.PUBLISHED:
        raise DomainError(
            f"{postmortem.ref} is published; start an amendment to change it.",
            code="postmortem_published",
            field="status",
        )
    if postmortem.status == Postmortem.Status.WITHDRAWN:
        raise DomainError(
            f"{postmortem.ref} is withdrawn: the severity of its incidents no longer requires a postmortem.",
            code="postmortem_withdrawn",
            field="status",
        )


def postmortem_update(
    *,
    postmortem: Postmortem,
    actor: AbstractBaseUser | None,
    owner: AbstractBaseUser | None = None,
    due_at: datetime | None = None,
    **fields: str,
) -> Postmortem:
    """Edit the title and sections (draft or in review); the blameless check runs on every save."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError({name: [f"{field_label(name)} cannot be edited here."]})
    if "title" in fields and not (fields["title"] or "").strip():
        raise ValidationError({"title": ["A title is required."]})
    if due_at is not None and timezone.is_naive(due_at):
        raise ValidationError({"due_at": ["The due time needs a time zone."]})
    with transaction.atomic():
        postmortem = _locked(postmortem)
        _refuse_if_frozen(postmortem)
        changed = [name for name, value in fields.items() if value is not None and value != getattr(postmortem, name)]
        for name in changed:
            setattr(postmortem, name, fields[name])
        if owner is not None and owner.pk != postmortem.owner_id:
            _event(
                postmortem=postmortem,
                kind=PostmortemEvent.Kind.OWNER_CHANGED,
                actor=actor,
                message=owner.get_username(),
                data={"old": postmortem.owner_id, "new": owner.pk},
            )
            postmortem.owner = owner
            changed.append("owner")
        if due_at is not None and due_at != postmortem.due_at:
            postmortem.due_at = due_at
            changed.append("due_at")
        if not changed:
            return postmortem
        postmortem.lint_warnings = _lint(postmortem)
        postmortem.save()
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.EDITED,
            actor=actor,
            message=f"Changed {_labels(changed)}",
            data={"fields": changed, "warnings": len(postmortem.lint_warnings)},
        )
        content = [name for name in changed if name in CONTENT_FIELDS]
        if content:
            _withdraw_approvals(postmortem, actor=actor, changed=content)
    return postmortem


def contributing_factor_save(
    *,
    postmortem: Postmortem,
    actor: AbstractBaseUser | None,
    category: str,
    description: str,
    factor: ContributingFactor | None = None,
    position: int | None = None,
) -> ContributingFactor:
    """Add (factor=None) or change a contributing factor; the postmortem's warnings are recomputed."""
    if category not in ContributingFactor.Category.values:
        raise ValidationError(
            {"category": [f"Category must be one of {', '.join(ContributingFactor.Category.values)}."]}
        )
    if not (description or "").strip():
        raise ValidationError({"description": ["A contributing factor needs a description."]})
    with transaction.atomic():
        postmortem = _locked(postmortem)
        _refuse_if_frozen(postmortem)
        if factor is None:
            factor = ContributingFactor(postmortem=postmortem, position=postmortem.factors.count())
        elif factor.postmortem_id != postmortem.pk:
            raise ValidationError({"contributing_factors": ["This contributing factor belongs to another postmortem."]})
        else:
            factor = ContributingFactor.objects.select_for_update().get(pk=factor.pk)
            if (factor.category, factor.description, factor.position) == (
                category,
                description.strip(),
                factor.position if position is None else position,
            ):
                return factor
        factor.category = category
        factor.description = description.strip()
        if position is not None:
            factor.position = position
        factor.save()
        _relint(postmortem)
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.EDITED,
            actor=actor,
            message="Changed contributing factors",
            data={"fields": ["contributing_factors"], "factor": factor.pk},
        )
        _withdraw_approvals(postmortem, actor=actor, changed=["contributing_factors"])
    return factor


def contributing_factor_delete(*, factor: ContributingFactor, actor: AbstractBaseUser | None) -> None:
    with transaction.atomic():
        postmortem = _locked(factor.postmortem)
        _refuse_if_frozen(postmortem)
        factor.delete()
        _relint(postmortem)
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.EDITED,
            actor=actor,
            message="Removed a contributing factor",
            data={"fields": ["contributing_factors"]},
        )
        _withdraw_approvals(postmortem, actor=actor, changed=["contributing_factors"])


# --- workflow ----------------------------------------------------------------------------------------------


def _submission_errors(postmortem: Postmortem) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in REQUIRED_SECTIONS:
        if not getattr(postmortem, name).strip():
            errors[name] = [f"{SECTIONS[name]} is required before review."]
    if postmortem.owner_id is None:
        errors["owner"] = ["A postmortem needs an owner before review."]
    if not postmortem.factors.exists():
        errors["contributing_factors"] = ["Add at least one contributing factor."]
    item_errors = [
        f"“{item.title}” needs "
        + " and ".join(
            part
            for part, missing in (("an owner", item.owner_id is None), ("a due date", item.due_on is None))
            if missing
        )
        for item in postmortem.action_items.exclude(status=ActionItem.Status.WONT_DO).order_by("pk")
        if item.owner_id is None or item.due_on is None
    ]
    if item_errors:
        errors["action_items"] = item_errors
    return errors


def postmortem_submit(*, postmortem: Postmortem, actor: AbstractBaseUser | None) -> Postmortem:
    """draft → in_review: needs the required sections, a contributing factor, owner and due date on each item."""
    with transaction.atomic():
        postmortem = _locked(postmortem)
        if postmortem.status == Postmortem.Status.IN_REVIEW:
            return postmortem
        if postmortem.status != Postmortem.Status.DRAFT:
            raise DomainError(
                f"{postmortem.ref} is {postmortem.get_status_display().lower()}; only a draft can be submitted.",
                code="postmortem_not_draft",
                field="status",
            )
        errors = _submission_errors(postmortem)
        if errors:
            raise ValidationError(errors)
        postmortem.status = Postmortem.Status.IN_REVIEW
        postmortem.review_round += 1
        postmortem.lint_warnings = _lint(postmortem)
        postmortem.save(update_fields=["status", "review_round", "lint_warnings", "updated_at"])
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.SUBMITTED,
            actor=actor,
            data={"round": postmortem.review_round, "warnings": len(postmortem.lint_warnings)},
        )
        for reviewer in _reviewers(postmortem):
            _notify(
                dedupe_key=f"postmortem:{postmortem.pk}:submitted:{postmortem.review_round}:{reviewer.pk}",
                user=reviewer,
                subject=f"Review requested: {postmortem.ref} {postmortem.title}",
                body=f"{postmortem.ref} {postmortem.title} is ready for review.\n\n{postmortem_url(postmortem)}",
            )
    return postmortem


def _authors(postmortem: Postmortem) -> set[int]:
    """The owner and whoever submitted the current round: neither may approve it."""
    authors = {postmortem.owner_id} if postmortem.owner_id else set()
    submitter = (
        postmortem.events.filter(
            kind__in=(PostmortemEvent.Kind.SUBMITTED, PostmortemEvent.Kind.AMENDMENT_STARTED), actor__isnull=False
        )
        .order_by("-at", "-id")
        .values_list("actor_id", flat=True)
        .first()
    )
    if submitter:
        authors.add(submitter)
    return authors


def _require_reviewer(postmortem: Postmortem, reviewer: AbstractBaseUser | None) -> None:
    if postmortem.status != Postmortem.Status.IN_REVIEW:
        raise DomainError(
            f"{postmortem.ref} is {postmortem.get_status_display().lower()}; only a postmortem in review is reviewed.",
            code="postmortem_not_in_review",
            field="status",
        )
    if reviewer is None or not selectors.is_manager(reviewer):
        raise DomainError("Only a manager reviews postmortems.", code="not_a_manager", field="reviewer")
    if reviewer.pk in _authors(postmortem):
        raise DomainError(
            "The author cannot approve or review their own postmortem; another manager must.",
            code="own_postmortem",
            field="reviewer",
        )


def postmortem_approve(
    *, postmortem: Postmortem, reviewer: AbstractBaseUser | None, comment: str = ""
) -> PostmortemReview:
    """A manager who is not the author approves the current review round (publishing is then allowed)."""
    reviewer = _user(reviewer)
    with transaction.atomic():
        postmortem = _locked(postmortem)
        _require_reviewer(postmortem, reviewer)
        existing = postmortem.reviews.filter(
            round=postmortem.review_round, reviewer=reviewer, decision=PostmortemReview.Decision.APPROVE
        ).first()
        if existing is not None:
            return existing
        review = PostmortemReview.objects.create(
            postmortem=postmortem,
            reviewer=reviewer,
            decision=PostmortemReview.Decision.APPROVE,
            comment=comment.strip(),
            round=postmortem.review_round,
            created_at=timezone.now(),
        )
        _event(postmortem=postmortem, kind=PostmortemEvent.Kind.APPROVED, actor=reviewer, message=review.comment)
        _notify(
            dedupe_key=f"postmortem:{postmortem.pk}:approved:{postmortem.review_round}:{reviewer.pk}",
            user=postmortem.owner,
            subject=f"Approved: {postmortem.ref} {postmortem.title}",
            body=f"{reviewer.get_username()} approved {postmortem.ref}. It can be published now.\n\n"
            f"{postmortem_url(postmortem)}",
        )
    return review


def postmortem_request_changes(
    *, postmortem: Postmortem, reviewer: AbstractBaseUser | None, comment: str
) -> Postmortem:
    """in_review → draft, with a required comment for the owner."""
    reviewer = _user(reviewer)
    if not (comment or "").strip():
        raise ValidationError({"comment": ["Say what should change."]})
    with transaction.atomic():
        postmortem = _locked(postmortem)
        _require_reviewer(postmortem, reviewer)
        PostmortemReview.objects.create(
            postmortem=postmortem,
            reviewer=reviewer,
            decision=PostmortemReview.Decision.REQUEST_CHANGES,
            comment=comment.strip(),
            round=postmortem.review_round,
            created_at=timezone.now(),
        )
        postmortem.status = Postmortem.Status.DRAFT
        postmortem.save(update_fields=["status", "updated_at"])
        _event(
            postmortem=postmortem, kind=PostmortemEvent.Kind.CHANGES_REQUESTED, actor=reviewer, message=comment.strip()
        )
        _notify(
            dedupe_key=f"postmortem:{postmortem.pk}:changes:{postmortem.review_round}:{reviewer.pk}",
            user=postmortem.owner,
            subject=f"Changes requested: {postmortem.ref} {postmortem.title}",
            body=f"{reviewer.get_username()} asks for changes:\n\n{comment.strip()}\n\n{postmortem_url(postmortem)}",
        )
    return postmortem


def _snapshot(postmortem: Postmortem) -> dict[str, Any]:
    return {
        "title": postmortem.title,
        "sections": postmortem.sections(),
        "contributing_factors": [
            {"category": factor.category, "description": factor.description}
            for factor in postmortem.factors.order_by("position", "id")
        ],
        "incidents": list(postmortem.incidents.order_by("declared_at").values_list("ref", flat=True)),
    }


def postmortem_publish(*, postmortem: Postmortem, actor: AbstractBaseUser | None) -> Postmortem:
    """in_review → published: needs an approval of this round by a manager who is not the author.

    Keeps the published text as an immutable revision; defaulted action-item due dates move to 28 days
    (priority) or 90 days (improvement) after publication."""
    actor = _user(actor)
    with transaction.atomic():
        postmortem = _locked(postmortem)
        if postmortem.status == Postmortem.Status.PUBLISHED:
            return postmortem
        if postmortem.status != Postmortem.Status.IN_REVIEW:
            raise DomainError(
                f"{postmortem.ref} is a draft; submit it for review first.",
                code="postmortem_not_in_review",
                field="status",
            )
        authors = _authors(postmortem)
        approved = (
            postmortem.reviews.filter(round=postmortem.review_round, decision=PostmortemReview.Decision.APPROVE)
            .exclude(reviewer_id__in=authors)
            .exists()
        )
        if not approved:
            raise DomainError(
                f"{postmortem.ref} needs an approval by a manager who is not the author before it is published.",
                code="postmortem_not_approved",
                field="status",
            )
        now = timezone.now()
        postmortem.status = Postmortem.Status.PUBLISHED
        if postmortem.published_at is None:
            postmortem.published_at = now
        postmortem.save(update_fields=["status", "published_at", "updated_at"])
        number = postmortem.revisions.count() + 1
        PostmortemRevision.objects.create(
            postmortem=postmortem, number=number, published_at=now, published_by=actor, content=_snapshot(postmortem)
        )
        published_on = selectors.org_today()
        for item in postmortem.action_items.filter(due_is_default=True, status__in=("open", "in_progress")):
            item.due_on = published_on + timedelta(days=DEFAULT_DUE_DAYS[item.priority])
            item.save(update_fields=["due_on", "updated_at"])
        _event(postmortem=postmortem, kind=PostmortemEvent.Kind.PUBLISHED, actor=actor, data={"revision": number})
        _notify(
            dedupe_key=f"postmortem:{postmortem.pk}:published:{number}",
            user=postmortem.owner,
            subject=f"Published: {postmortem.ref} {postmortem.title}",
            body=f"{postmortem.ref} is published (revision {number}) and readable by everyone.\n\n"
            f"{postmortem_url(postmortem)}",
        )
    return postmortem


def postmortem_amend(*, postmortem: Postmortem, actor: AbstractBaseUser | None, reason: str) -> Postmortem:
    """published → in_review: an amendment. The published revision stays as it was."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why the postmortem is amended."]})
    with transaction.atomic():
        postmortem = _locked(postmortem)
        if postmortem.status == Postmortem.Status.IN_REVIEW:
            return postmortem
        if postmortem.status != Postmortem.Status.PUBLISHED:
            raise DomainError(
                f"{postmortem.ref} is a draft; only a published postmortem is amended.",
                code="postmortem_not_published",
                field="status",
            )
        postmortem.status = Postmortem.Status.IN_REVIEW
        postmortem.review_round += 1
        postmortem.save(update_fields=["status", "review_round", "updated_at"])
        _event(
            postmortem=postmortem,
            kind=PostmortemEvent.Kind.AMENDMENT_STARTED,
            actor=actor,
            message=reason.strip(),
            data={"round": postmortem.review_round},
        )
        for reviewer in _reviewers(postmortem):
            _notify(
                dedupe_key=f"postmortem:{postmortem.pk}:submitted:{postmortem.review_round}:{reviewer.pk}",
                user=reviewer,
                subject=f"Amendment to review: {postmortem.ref} {postmortem.title}",
                body=f"{postmortem.ref} is amended: {reason.strip()}\n\n{postmortem_url(postmortem)}",
            )
    return postmortem


# --- action items --------------------------------------------------------------------------------------------


def _item_errors(*, title: str | None, priority: str | None, kind: str | None, due_on: date | None) -> dict:
    errors: dict[str, list[str]] = {}
    if title is not None and not title.strip():
        errors["title"] = ["An action item needs a title."]
    if priority is not None and priority not in ActionItem.Priority.values:
        errors["priority"] = [f"Priority must be one of {', '.join(ActionItem.Priority.values)}."]
    if kind is not None and kind not in ActionItem.Kind.values:
        errors["kind"] = [f"Kind must be one of {', '.join(ActionItem.Kind.values)}."]
    if due_on is not None and isinstance(due_on, datetime):
        errors["due_on"] = ["The due date is a date, not a time."]
    return errors


def _item_event(item: ActionItem, kind: str, actor, message: str = "", data: dict | None = None) -> None:
    _event(postmortem=item.postmortem, action_item=item, kind=kind, actor=actor, message=message, data=data)


def action_item_create(
    *,
    title: str,
    actor: AbstractBaseUser | None,
    postmortem: Postmortem | None = None,
    owner: AbstractBaseUser | None = None,
    team=None,
    priority: str = ActionItem.Priority.IMPROVEMENT,
    kind: str = ActionItem.Kind.PREVENT,
    due_on: date | None = None,
    tracker_url: str = "",
    runbook=None,
    game_day=None,
) -> ActionItem:
    """An action item; without a due date it gets the default (28 / 90 days), re-based at publication.
    `runbook`: the runbook it updates; `game_day`: the game day it came from (both optional)."""
    errors = _item_errors(title=title or "", priority=priority, kind=kind, due_on=due_on)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        due_is_default = due_on is None
        if due_is_default:
            base = (
                postmortem.published_at.astimezone(zoneinfo.ZoneInfo(settings.FIREBREAK_REPORT_TIME_ZONE)).date()
                if (postmortem is not None and postmortem.published_at)
                else selectors.org_today()
            )
            due_on = base + timedelta(days=DEFAULT_DUE_DAYS[priority])
        if team is None and postmortem is not None:
            first = postmortem.incidents.select_related("service").order_by("declared_at").first()
            team = first.service.team if first else None
        item = ActionItem(
            postmortem=postmortem,
            title=title.strip(),
            owner=owner,
            team=team,
            priority=priority,
            kind=kind,
            due_on=due_on,
            due_is_default=due_is_default,
            tracker_url=tracker_url,
            runbook=runbook,
            game_day=game_day,
        )
        try:
            item.full_clean(exclude=["postmortem", "owner", "team", "runbook", "game_day"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        item.save()
        _item_event(item, PostmortemEvent.Kind.ACTION_ITEM_ADDED, actor, item.title)
        if owner is not None and _user(actor) is not None and owner.pk != actor.pk:
            _notify(
                dedupe_key=f"action-item:{item.pk}:assigned:{owner.pk}",
                user=owner,
                subject=f"Action item for you: {item.title}",
                body=f"You own the action item “{item.title}”, due {item.due_on:%Y-%m-%d}.",
            )
    return item


def action_item_update(
    *,
    item: ActionItem,
    actor: AbstractBaseUser | None,
    title: str | None = None,
    owner: AbstractBaseUser | None = None,
    team=None,
    priority: str | None = None,
    kind: str | None = None,
    due_on: date | None = None,
    tracker_url: str | None = None,
    runbook=None,
    game_day=None,
) -> ActionItem:
    """Change what is given (None: unchanged); each change is recorded with its old and new value."""
    errors = _item_errors(title=title, priority=priority, kind=kind, due_on=due_on)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        item = ActionItem.objects.select_for_update().get(pk=item.pk)
        changes: dict[str, dict[str, object]] = {}
        values = {
            "title": title.strip() if title is not None else None,
            "owner": owner,
            "team": team,
            "priority": priority,
            "kind": kind,
            "due_on": due_on,
            "tracker_url": tracker_url,
            "runbook": runbook,
            "game_day": game_day,
        }
        for name, value in values.items():
            if value is None or value == getattr(item, name):
                continue
            old = getattr(item, name)
            changes[name] = {"old": str(old) if old is not None else None, "new": str(value)}
            setattr(item, name, value)
        if not changes:
            return item
        if "due_on" in changes:
            item.due_is_default = False
        try:
            item.full_clean(exclude=["postmortem", "owner", "team", "runbook", "game_day"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        item.save()
        _item_event(item, PostmortemEvent.Kind.ACTION_ITEM_CHANGED, actor, item.title, changes)
    return item


def action_item_set_status(
    *, item: ActionItem, actor: AbstractBaseUser | None, status: str, reason: str = ""
) -> ActionItem:
    """open / in progress / done (stamps completed_at) / won't do (needs a reason). Same status: no-op."""
    if status not in ActionItem.Status.values:
        raise ValidationError({"status": [f"Status must be one of {', '.join(ActionItem.Status.values)}."]})
    if status == ActionItem.Status.WONT_DO and not (reason or "").strip():
        raise ValidationError({"wont_do_reason": ["Say why this will not be done."]})
    with transaction.atomic():
        item = ActionItem.objects.select_for_update(of=("self",)).select_related("postmortem").get(pk=item.pk)
        if item.status == status:
            return item
        old = item.status
        item.status = status
        item.completed_at = timezone.now() if status == ActionItem.Status.DONE else None
        item.wont_do_reason = reason.strip() if status == ActionItem.Status.WONT_DO else ""
        item.save(update_fields=["status", "completed_at", "wont_do_reason", "updated_at"])
        _item_event(
            item,
            PostmortemEvent.Kind.ACTION_ITEM_STATUS,
            actor,
            f"{item.title}: {ActionItem.Status(old).label} → {ActionItem.Status(status).label}",
            {"old": old, "new": status, "reason": item.wont_do_reason},
        )
    return item


# --- reminders -----------------------------------------------------------------------------------------------


def reminders_send_digest(*, digest: selectors.Digest, today: date) -> bool:
    """One e-mail per person per day listing their overdue and soon-due items and postmortems."""
    user = get_user_model().objects.filter(pk=digest.user_id, is_active=True).first()
    if user is None:
        return False
    lines: list[str] = []
    if digest.overdue_items:
        lines.append("Overdue action items:")
        lines += [f"- {item.title} (due {item.due_on:%Y-%m-%d})" for item in digest.overdue_items]
    if digest.due_soon_items:
        lines.append("Action items due within two days:")
        lines += [f"- {item.title} (due {item.due_on:%Y-%m-%d})" for item in digest.due_soon_items]
    if digest.late_postmortems:
        lines.append("Postmortems past their due date:")
        lines += [f"- {pm.ref} {pm.title}: {postmortem_url(pm)}" for pm in digest.late_postmortems]
    if digest.due_soon_postmortems:
        lines.append("Postmortems due within two days:")
        lines += [f"- {pm.ref} {pm.title} (due {pm.due_at:%Y-%m-%d %H:%M} UTC)" for pm in digest.due_soon_postmortems]
    if not lines:
        return False
    count = len(digest.overdue_items) + len(digest.due_soon_items)
    count_pm = len(digest.late_postmortems) + len(digest.due_soon_postmortems)
    with transaction.atomic():
        created = _notify(
            dedupe_key=f"postmortem-digest:{user.pk}:{today.isoformat()}",
            user=user,
            subject=f"Firebreak: {count} action item(s) and {count_pm} postmortem(s) need you",
            body="\n".join(lines),
        )
        if created:
            for postmortem in digest.late_postmortems + digest.due_soon_postmortems:
                _event(
                    postmortem=postmortem,
                    kind=PostmortemEvent.Kind.REMINDER_SENT,
                    actor=None,
                    data={"user": user.pk, "date": today.isoformat()},
                )
    return created
