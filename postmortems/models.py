"""Blameless postmortems, their reviews and published revisions, contributing factors and action items.

Workflows live in postmortems.services; here only data, DB-enforced invariants and tiny properties.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from incidents.models import Incident
from oncall.models import Team

# The Markdown sections of a postmortem, in the order they are shown. Name → label.
SECTIONS = {
    "summary": "Summary",
    "impact": "Customer impact",
    "timeline": "Timeline",
    "detection": "Detection (how we found out, and why not sooner)",
    "trigger": "Trigger",
    "resolution": "Resolution",
    "went_well": "What went well",
    "went_badly": "What went badly",
    "got_lucky": "Where we got lucky",
    "lessons": "Lessons",
}
# Sections a postmortem needs before it can be submitted for review.
REQUIRED_SECTIONS = ("summary", "impact", "timeline", "detection", "trigger", "resolution", "lessons")
OPEN_ITEM_STATUSES = ("open", "in_progress")
# A postmortem's content is what a published revision holds and what reviewers approve: the title, the sections,
# the contributing factors and the incidents it covers. Changing any of it after an approval withdraws the
# approval. Owner, due date, action items and warnings are not content.
CONTENT_FIELDS = ("title", *SECTIONS)


class Postmortem(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"
        # a draft nothing was ever submitted for, whose incidents' severity no longer requires a postmortem
        WITHDRAWN = "withdrawn", "Withdrawn"

    title = models.CharField(max_length=200)
    incidents = models.ManyToManyField(Incident, related_name="postmortems", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="postmortems_owned"
    )
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="End of the due day in the team's time zone (resolve date + policy deadline)"
    )
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True, verbose_name="customer impact")
    timeline = models.TextField(blank=True)
    detection = models.TextField(blank=True, help_text="How we found out, and why not sooner")
    trigger = models.TextField(blank=True)
    resolution = models.TextField(blank=True)
    went_well = models.TextField(blank=True, verbose_name="what went well")
    went_badly = models.TextField(blank=True, verbose_name="what went badly")
    got_lucky = models.TextField(blank=True, verbose_name="where we got lucky")
    lessons = models.TextField(blank=True)
    lint_warnings = models.JSONField(default=list, blank=True, help_text="Blameless-language warnings (advisory)")
    review_round = models.PositiveIntegerField(
        default=0,
        help_text="Incremented on every submission for review and whenever a content change withdraws approvals",
    )
    published_at = models.DateTimeField(null=True, blank=True, help_text="First publication; kept on amendments")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="published") | Q(published_at__isnull=False),
                name="postmortems_postmortem_published_has_time",
                violation_error_message="a published postmortem needs published_at",
            ),
            models.CheckConstraint(
                condition=~Q(title=""),
                name="postmortems_postmortem_title_not_blank",
                violation_error_message="a postmortem needs a title",
            ),
        ]
        indexes = [
            # owner reminders and the "due soon / late" lists: unpublished postmortems by due date
            models.Index(fields=["due_at"], name="pm_unpublished_due_idx", condition=~Q(status="published")),
            # the library and the admin list: status filter, newest first
            models.Index(fields=["status", "-created_at"], name="pm_status_created_idx"),
            # metrics: postmortems published in a month
            models.Index(fields=["published_at"], name="pm_published_idx"),
        ]

    def __str__(self) -> str:
        return f"PM-{self.pk} {self.title}"

    @property
    def ref(self) -> str:
        return f"PM-{self.pk}"

    def sections(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SECTIONS}


class PostmortemRevision(models.Model):
    """A published version, kept forever: an amendment never overwrites what readers saw before."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content = models.JSONField(help_text="Title, sections and contributing factors as published")

    class Meta:
        ordering = ["postmortem", "number"]
        constraints = [
            models.UniqueConstraint(fields=["postmortem", "number"], name="postmortems_revision_unique_number"),
        ]

    def __str__(self) -> str:
        return f"PM-{self.postmortem_id} revision {self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("A published revision is immutable.")
        super().save(*args, **kwargs)


class PostmortemReview(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REQUEST_CHANGES = "request_changes", "Request changes"

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True)
    round = models.PositiveIntegerField(help_text="The review round (submission) this decision belongs to")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(decision="request_changes") | ~Q(comment=""),
                name="postmortems_review_changes_need_comment",
                violation_error_message="requesting changes needs a comment",
            ),
        ]
        indexes = [
            # "is the current round approved?" on publish
            models.Index(fields=["postmortem", "round", "decision"], name="pm_review_round_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer}"


class PostmortemEvent(models.Model):
    """Audit rows: every state change of a postmortem or an action item, written in the same transaction."""

    class Kind(models.TextChoices):
        CREATED = "created", "Draft created"
        EDITED = "edited", "Edited"
        SUBMITTED = "submitted", "Submitted for review"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        PUBLISHED = "published", "Published"
        AMENDMENT_STARTED = "amendment_started", "Amendment started"
        APPROVAL_WITHDRAWN = "approval_withdrawn", "Approval withdrawn"
        WITHDRAWN = "withdrawn", "Withdrawn"
        RESTORED = "restored", "Restored"
        INCIDENT_LINKED = "incident_linked", "Incident linked"
        OWNER_CHANGED = "owner_changed", "Owner changed"
        ACTION_ITEM_ADDED = "action_item_added", "Action item added"
        ACTION_ITEM_CHANGED = "action_item_changed", "Action item changed"
        ACTION_ITEM_STATUS = "action_item_status", "Action item status"
        REMINDER_SENT = "reminder_sent", "Reminder sent"

    postmortem = models.ForeignKey(Postmortem, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    action_item = models.ForeignKey(
        "ActionItem", null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(postmortem__isnull=False) | Q(action_item__isnull=False),
                name="postmortems_event_has_subject",
                violation_error_message="an event belongs to a postmortem or an action item",
            ),
        ]
        indexes = [
            # the history of one postmortem in order
            models.Index(fields=["postmortem", "at", "id"], name="pm_event_history_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"


class ContributingFactor(models.Model):
    class Category(models.TextChoices):
        CHANGE = "change", "Change / deploy"
        CONFIGURATION = "configuration", "Configuration"
        CAPACITY = "capacity", "Capacity"
        DEPENDENCY = "dependency", "Dependency"
        INFRASTRUCTURE = "infrastructure", "Infrastructure"
        MONITORING_GAP = "monitoring_gap", "Monitoring gap"
        PROCESS = "process", "Process / documentation"
        UNKNOWN = "unknown", "Unknown"

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="factors")
    category = models.CharField(max_length=32, choices=Category.choices)
    description = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["postmortem", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(description=""),
                name="postmortems_factor_description_not_blank",
                violation_error_message="a contributing factor needs a description",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.description[:60]}"


class ActionItem(models.Model):
    class Priority(models.TextChoices):
        PRIORITY = "priority", "Priority"
        IMPROVEMENT = "improvement", "Improvement"

    class Kind(models.TextChoices):
        PREVENT = "prevent", "Prevent"
        DETECT = "detect", "Detect"
        MITIGATE = "mitigate", "Mitigate"
        PROCESS = "process", "Process"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    postmortem = models.ForeignKey(
        Postmortem, null=True, blank=True, on_delete=models.CASCADE, related_name="action_items"
    )
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_items"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_items")
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.IMPROVEMENT)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PREVENT)
    due_on = models.DateField(null=True, blank=True)
    due_is_default = models.BooleanField(
        default=False, help_text="The due date was defaulted; publication moves it to 28/90 days after publishing"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    wont_do_reason = models.TextField(blank=True)
    tracker_url = models.URLField(blank=True, max_length=500, help_text="The ticket in the team's tracker")
    runbook = models.ForeignKey(
        "incidents.Runbook",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_items",
        help_text="The runbook this item updates, if any",
    )
    game_day = models.ForeignKey(
        "incidents.GameDay",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_items",
        help_text="The game day this item came from, if any",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="done") & Q(completed_at__isnull=False))
                | (~Q(status="done") & Q(completed_at__isnull=True)),
                name="postmortems_actionitem_completed_iff_done",
                violation_error_message="completed_at is set exactly when the item is done",
            ),
            models.CheckConstraint(
                condition=~Q(status="wont_do") | ~Q(wont_do_reason=""),
                name="postmortems_actionitem_wont_do_needs_reason",
                violation_error_message="won't do needs a reason",
            ),
            models.CheckConstraint(
                condition=Q(status="wont_do") | Q(wont_do_reason=""),
                name="postmortems_actionitem_reason_only_for_wont_do",
                violation_error_message="only a won't-do item has a won't-do reason",
            ),
            models.CheckConstraint(
                condition=~Q(title=""),
                name="postmortems_actionitem_title_not_blank",
                violation_error_message="an action item needs a title",
            ),
        ]
        indexes = [
            # overdue / due-soon digests and the "my open items" filter: open items of an owner by due date
            models.Index(
                fields=["owner", "due_on"],
                name="pm_item_owner_open_idx",
                condition=Q(status__in=OPEN_ITEM_STATUSES),
            ),
            # sprint planning export and API filter: open items by team and priority
            models.Index(
                fields=["team", "priority", "due_on"],
                name="pm_item_team_open_idx",
                condition=Q(status__in=OPEN_ITEM_STATUSES),
            ),
            # metrics: items due in a month (on-time and completion rates)
            models.Index(fields=["due_on", "status"], name="pm_item_due_status_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ITEM_STATUSES
