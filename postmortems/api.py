"""REST API for postmortems and action items: views validate with a serializer, call a service or selector."""

from __future__ import annotations

import csv
import io

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import CursorPagination, StrictBodyMixin
from incidents.models import GameDay, Runbook
from oncall.models import Team
from postmortems import selectors, services
from postmortems.filters import ActionItemFilter, PostmortemFilter
from postmortems.models import (
    SECTIONS,
    ActionItem,
    ContributingFactor,
    Postmortem,
    PostmortemReview,
    PostmortemRevision,
)
from postmortems.rendering import render_sections

User = get_user_model()


class UsernameField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", User.objects.filter(is_active=True))
        super().__init__(**kwargs)


class LintWarningSerializer(serializers.Serializer):
    rule = serializers.CharField()
    phrase = serializers.CharField()
    where = serializers.CharField()
    line = serializers.IntegerField()
    suggestion = serializers.CharField()


class FactorSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="null for a factor of a published revision shown to a reader"
    )

    class Meta:
        model = ContributingFactor
        fields = ["id", "category", "description", "position"]


class ActionItemSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    team = serializers.CharField(source="team.slug", read_only=True, allow_null=True)
    postmortem = serializers.IntegerField(source="postmortem_id", read_only=True, allow_null=True)
    runbook = serializers.CharField(source="runbook.slug", read_only=True, allow_null=True)
    game_day = serializers.IntegerField(source="game_day_id", read_only=True, allow_null=True)
    # "" when none: a read-only model field loses allow_blank, and the schema then demanded a URI
    tracker_url = serializers.URLField(
        read_only=True, allow_blank=True, max_length=500, help_text="The ticket in the team's tracker"
    )
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "postmortem",
            "title",
            "owner",
            "team",
            "priority",
            "kind",
            "due_on",
            "status",
            "completed_at",
            "wont_do_reason",
            "tracker_url",
            "runbook",
            "game_day",
            "overdue",
        ]
        read_only_fields = fields

    def get_overdue(self, obj: ActionItem) -> bool:
        return bool(obj.is_open and obj.due_on and obj.due_on < self.context.get("today", selectors.org_today()))


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = PostmortemReview
        fields = ["id", "round", "reviewer", "decision", "comment", "created_at"]
        read_only_fields = fields


class PostmortemListSerializer(serializers.ModelSerializer):
    ref = serializers.CharField(read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    incidents = serializers.SerializerMethodField()
    warning_count = serializers.SerializerMethodField()

    class Meta:
        model = Postmortem
        fields = ["id", "ref", "title", "status", "owner", "due_at", "published_at", "incidents", "warning_count"]
        read_only_fields = fields

    def get_incidents(self, obj: Postmortem) -> list[str]:
        return [incident.ref for incident in obj.incidents.all()]

    def get_warning_count(self, obj: Postmortem) -> int:
        return len(obj.lint_warnings or [])

    def to_representation(self, obj: Postmortem) -> dict:
        data = super().to_representation(obj)
        shown_title = getattr(obj, "shown_title", None)  # selectors.with_title_for: a reader during an amendment
        if shown_title:
            data["title"] = shown_title
        return data


class PostmortemDetailSerializer(PostmortemListSerializer):
    html = serializers.SerializerMethodField(help_text="Each section rendered from Markdown and sanitised")
    lint_warnings = LintWarningSerializer(many=True, read_only=True)
    contributing_factors = FactorSerializer(source="factors", many=True, read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    reviews = ReviewSerializer(many=True, read_only=True)
    revisions = serializers.SerializerMethodField()
    shown_revision = serializers.SerializerMethodField(
        help_text="While an amendment is under way, people not involved in it (neither the owner, the incidents' "
        "responders nor a manager) read the last published revision: its number; null when the text shown is "
        "the current one"
    )

    class Meta(PostmortemListSerializer.Meta):
        fields = [
            *PostmortemListSerializer.Meta.fields,
            "review_round",
            *SECTIONS,
            "html",
            "lint_warnings",
            "contributing_factors",
            "action_items",
            "reviews",
            "revisions",
            "shown_revision",
        ]
        read_only_fields = fields

    def get_html(self, obj: Postmortem) -> dict[str, str]:
        return render_sections(obj.sections())

    def get_revisions(self, obj: Postmortem) -> list[dict]:
        return [{"number": r.number, "published_at": r.published_at} for r in obj.revisions.all()]

    def get_shown_revision(self, obj: Postmortem) -> int | None:
        revision = self.context.get("shown_revision")
        return revision.number if revision is not None else None

    def to_representation(self, obj: Postmortem) -> dict:
        data = super().to_representation(obj)
        revision: PostmortemRevision | None = self.context.get("shown_revision")
        if revision is not None:
            # a reader during an amendment: the published text, not the work in progress
            content = revision.content
            sections = {name: (content.get("sections") or {}).get(name, "") for name in SECTIONS}
            warnings = selectors.revision_lint_warnings(revision)
            data.update(
                title=content.get("title", data["title"]),
                incidents=list(content.get("incidents", data["incidents"])),
                **sections,
                html=render_sections(sections),
                lint_warnings=warnings,
                warning_count=len(warnings),
                contributing_factors=[
                    {"id": None, "position": position, **factor}
                    for position, factor in enumerate(content.get("contributing_factors") or [])
                ],
            )
        return data


class RevisionSerializer(serializers.ModelSerializer):
    """A published revision as listed: who published it and when, and its title."""

    published_by = serializers.CharField(source="published_by.username", read_only=True, allow_null=True, default=None)
    title = serializers.CharField(source="content.title", read_only=True, default="")

    class Meta:
        model = PostmortemRevision
        fields = ["number", "published_at", "published_by", "title"]
        read_only_fields = fields


class RevisionFactorSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ContributingFactor.Category.choices, read_only=True)
    description = serializers.CharField(read_only=True)


class RevisionDetailSerializer(RevisionSerializer):
    """A published revision as it was published: immutable."""

    incidents = serializers.ListField(
        child=serializers.CharField(), source="content.incidents", read_only=True, default=list
    )
    sections = serializers.DictField(
        child=serializers.CharField(allow_blank=True), source="content.sections", read_only=True
    )
    html = serializers.SerializerMethodField(help_text="Each section rendered from Markdown and sanitised")
    contributing_factors = RevisionFactorSerializer(
        many=True, source="content.contributing_factors", read_only=True, default=list
    )

    class Meta(RevisionSerializer.Meta):
        fields = [*RevisionSerializer.Meta.fields, "incidents", "sections", "html", "contributing_factors"]
        read_only_fields = fields

    def get_html(self, obj: PostmortemRevision) -> dict[str, str]:
        return render_sections(obj.content.get("sections") or {})


class PostmortemUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    owner = UsernameField(required=False)
    due_at = serializers.DateTimeField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECTIONS:
            self.fields[name] = serializers.CharField(required=False, allow_blank=True)


class FactorInputSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ContributingFactor.Category.choices)
    description = serializers.CharField()


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class ActionItemInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    owner = UsernameField(required=False)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False)
    priority = serializers.ChoiceField(choices=ActionItem.Priority.choices, default=ActionItem.Priority.IMPROVEMENT)
    kind = serializers.ChoiceField(choices=ActionItem.Kind.choices, default=ActionItem.Kind.PREVENT)
    due_on = serializers.DateField(required=False)
    tracker_url = serializers.URLField(required=False, allow_blank=True, default="")
    runbook = serializers.SlugRelatedField(
        slug_field="slug", queryset=Runbook.objects.all(), required=False, help_text="The runbook it updates (slug)"
    )
    game_day = serializers.PrimaryKeyRelatedField(
        queryset=GameDay.objects.all(), required=False, help_text="The game day it came from (id)"
    )


class ActionItemUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    owner = UsernameField(required=False)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False)
    priority = serializers.ChoiceField(choices=ActionItem.Priority.choices, required=False)
    kind = serializers.ChoiceField(choices=ActionItem.Kind.choices, required=False)
    due_on = serializers.DateField(required=False)
    tracker_url = serializers.URLField(required=False, allow_blank=True)
    runbook = serializers.SlugRelatedField(slug_field="slug", queryset=Runbook.objects.all(), required=False)
    game_day = serializers.PrimaryKeyRelatedField(queryset=GameDay.objects.all(), required=False)
    status = serializers.ChoiceField(choices=ActionItem.Status.choices, required=False)
    wont_do_reason = serializers.CharField(required=False, allow_blank=True, default="")


class PostmortemPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class PostmortemViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Postmortems: the library (published ones for everyone), editing, and one POST per workflow step."""

    filterset_class = PostmortemFilter
    pagination_class = PostmortemPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Postmortem.objects.none()
        if self.action == "list":
            base = selectors.with_title_for(selectors.postmortem_list(), self.request.user)
        elif self.action in ("revisions", "revision"):
            base = Postmortem.objects.all()
        else:
            base = selectors.postmortem_detail()
        return base.filter(pk__in=selectors.postmortems_visible_to(self.request.user).values("pk"))

    def get_serializer_class(self):
        return PostmortemListSerializer if self.action == "list" else PostmortemDetailSerializer

    def _editable(self) -> Postmortem:
        postmortem = self.get_object()
        if not selectors.user_can_edit_postmortem(self.request.user, postmortem):
            raise exceptions.PermissionDenied("Only the owner, the incident's responders and managers edit this.")
        return postmortem

    def _respond(self, postmortem: Postmortem, code: int = status.HTTP_200_OK) -> Response:
        postmortem = selectors.postmortem_detail().get(pk=postmortem.pk)
        return Response(PostmortemDetailSerializer(postmortem).data, status=code)

    def retrieve(self, request, pk=None):
        """Get a postmortem (readers not involved in an amendment get the published revision).

        During an amendment, people not involved in it read the last published revision; `shown_revision` says
        which."""
        postmortem = self.get_object()
        revision = selectors.postmortem_revision_for_reader(user=request.user, postmortem=postmortem)
        serializer = PostmortemDetailSerializer(postmortem, context={"request": request, "shown_revision": revision})
        return Response(serializer.data)

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def revisions(self, request, pk=None):
        """List a postmortem's published revisions, oldest first.

        Revisions are immutable: an amendment adds one, never changes one."""
        revisions = selectors.postmortem_revisions(postmortem=self.get_object())
        return Response(RevisionSerializer(revisions, many=True).data)

    @extend_schema(responses=RevisionDetailSerializer)
    @action(
        detail=True,
        methods=["get"],
        url_path=r"revisions/(?P<number>[0-9]+)",
        pagination_class=None,
        filterset_class=None,
    )
    def revision(self, request, pk=None, number=None):
        """One published revision, as it was published."""
        revisions = selectors.postmortem_revisions(postmortem=self.get_object())
        return Response(RevisionDetailSerializer(get_object_or_404(revisions, number=int(number))).data)

    @extend_schema(request=PostmortemUpdateSerializer, responses=PostmortemDetailSerializer)
    def partial_update(self, request, pk=None):
        """Edit a postmortem's title, owner, due date or sections."""
        serializer = PostmortemUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        postmortem = services.postmortem_update(
            postmortem=self._editable(), actor=request.user, **serializer.validated_data
        )
        return self._respond(postmortem)

    @extend_schema(request=FactorInputSerializer, responses={201: PostmortemDetailSerializer})
    @action(detail=True, methods=["post"])
    def factors(self, request, pk=None):
        """Add a contributing factor."""
        serializer = FactorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        postmortem = self._editable()
        services.contributing_factor_save(postmortem=postmortem, actor=request.user, **serializer.validated_data)
        return self._respond(postmortem, status.HTTP_201_CREATED)

    @extend_schema(request=ActionItemInputSerializer, responses={201: ActionItemSerializer})
    @action(detail=True, methods=["post"], url_path="action-items")
    def action_items(self, request, pk=None):
        """Add an action item.

        Without `due_on` it is due 28 days (priority) or 90 days (improvement) after publication."""
        serializer = ActionItemInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.action_item_create(postmortem=self._editable(), actor=request.user, **serializer.validated_data)
        return Response(ActionItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=PostmortemDetailSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def submit(self, request, pk=None):
        """Submit a postmortem for review."""
        return self._respond(services.postmortem_submit(postmortem=self._editable(), actor=request.user))

    @extend_schema(request=CommentSerializer, responses=PostmortemDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a postmortem (a manager who is not the author)."""
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        postmortem = self.get_object()
        services.postmortem_approve(postmortem=postmortem, reviewer=request.user, **serializer.validated_data)
        return self._respond(postmortem)

    @extend_schema(request=CommentSerializer, responses=PostmortemDetailSerializer)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request, pk=None):
        """Send a postmortem back to draft with a comment."""
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        postmortem = services.postmortem_request_changes(
            postmortem=self.get_object(), reviewer=request.user, **serializer.validated_data
        )
        return self._respond(postmortem)

    @extend_schema(responses=PostmortemDetailSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def publish(self, request, pk=None):
        """Publish an approved postmortem."""
        return self._respond(services.postmortem_publish(postmortem=self._editable(), actor=request.user))

    @extend_schema(request=ReasonSerializer, responses=PostmortemDetailSerializer)
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """Amend a published postmortem; the published revision is kept."""
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        postmortem = services.postmortem_amend(
            postmortem=self._editable(), actor=request.user, **serializer.validated_data
        )
        return self._respond(postmortem)


class ActionItemPagination(CursorPagination):
    ordering = ("due_on", "id")


class ActionItemViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Action items: list with filters (owner, team, status, priority, overdue), status and field updates,
    and a CSV export for sprint planning."""

    serializer_class = ActionItemSerializer
    filterset_class = ActionItemFilter
    pagination_class = ActionItemPagination

    def get_queryset(self):
        return selectors.action_item_list()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "today": selectors.org_today()}

    @extend_schema(request=ActionItemUpdateSerializer, responses=ActionItemSerializer)
    def partial_update(self, request, pk=None):
        """Change an action item's fields or status."""
        item = self.get_object()
        if not selectors.user_can_edit_action_item(request.user, item):
            raise exceptions.PermissionDenied("Only the item's owner or a manager changes it.")
        serializer = ActionItemUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        new_status = data.pop("status", None)
        reason = data.pop("wont_do_reason", "")
        if "owner" in data and not selectors.is_manager(request.user):
            raise exceptions.PermissionDenied("Only a manager reassigns an action item.")
        if data:
            item = services.action_item_update(item=item, actor=request.user, **data)
        if new_status is not None:
            item = services.action_item_set_status(item=item, actor=request.user, status=new_status, reason=reason)
        item = selectors.action_item_list().get(pk=item.pk)
        return Response(self.get_serializer(item).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(description="Open action items as CSV")})
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        """Export open action items as CSV.

        Open and in-progress items (filters apply), by team and priority, for sprint planning."""
        queryset = self.filter_queryset(self.get_queryset()).filter(status__in=("open", "in_progress"))
        queryset = queryset.order_by("team__slug", "priority", "due_on", "id")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["team", "priority", "kind", "title", "owner", "due_on", "status", "postmortem", "tracker_url"])
        for item in queryset:
            writer.writerow(
                [
                    item.team.slug if item.team else "",
                    item.priority,
                    item.kind,
                    item.title,
                    item.owner.username if item.owner else "",
                    item.due_on.isoformat() if item.due_on else "",
                    item.status,
                    item.postmortem.ref if item.postmortem else "",
                    item.tracker_url,
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="action-items.csv"'
        return response
