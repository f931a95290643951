from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import StrictBodyMixin, query_id, query_time
from oncall import selectors, services
from oncall.filters import OverrideFilter, ShiftFilter, UnavailabilityFilter
from oncall.models import (
    EscalationPolicy,
    Override,
    Rotation,
    RotationMember,
    Shift,
    Swap,
    Team,
    TeamMembership,
    Unavailability,
)

MAX_RANGE = timedelta(days=92)


class TeamMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = TeamMembership
        fields = ["username", "role"]


class TeamSerializer(serializers.ModelSerializer):
    members = TeamMemberSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "timezone", "description", "members"]


class TeamViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TeamSerializer
    lookup_field = "slug"
    queryset = Team.objects.prefetch_related("memberships__user").order_by("name")
    pagination_class = None


class ManagersWrite(permissions.DjangoModelPermissions):
    """Reading needs a login; writing needs the model permission (Managers)."""

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class AwareDateTimeField(serializers.DateTimeField):
    """A time with its zone: a naive time is refused rather than read in the server's zone."""

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            raise ApiValidationError("Give the time with its zone, for example 2026-12-15T09:00:00+01:00.")
        return super().enforce_timezone(value)


class UserField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", get_user_model().objects.all())
        super().__init__(**kwargs)


class RotationMemberSerializer(serializers.ModelSerializer):
    user = UserField()

    class Meta:
        model = RotationMember
        fields = ["id", "user", "position", "active_from", "active_until"]

    def validate(self, attrs):
        # the database's check constraint answered a 500 (found by schemathesis against a seeded server)
        start, end = attrs.get("active_from"), attrs.get("active_until")
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError({"active_until": ["Active until must be after active from."]})
        return attrs


class MemberOrderSerializer(serializers.Serializer):
    usernames = serializers.ListField(child=UserField(), allow_empty=False)


class RotationSerializer(serializers.ModelSerializer):
    members = RotationMemberSerializer(many=True, read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all())

    class Meta:
        model = Rotation
        fields = [
            "id", "team", "name", "layer", "timezone", "unit", "count", "handoff_time", "handoff_weekday",
            "anchor_date", "strategy", "min_rest", "max_consecutive_days", "weekend_weight", "holiday_weight",
            "holiday_calendar", "horizon", "fairness_horizon", "is_active", "plan_version", "members",
        ]  # fmt: skip
        read_only_fields = ["plan_version"]


class MemberFairnessSerializer(serializers.Serializer):
    username = serializers.CharField()
    real_hours = serializers.FloatField()
    nominal_hours = serializers.FloatField()
    weighted_hours = serializers.FloatField()
    slots = serializers.IntegerField()
    night_hours = serializers.FloatField()
    pages = serializers.IntegerField()


class FairnessReportSerializer(serializers.Serializer):
    rotation = serializers.IntegerField(source="rotation_id")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    members = MemberFairnessSerializer(many=True)
    spread = serializers.DictField(child=serializers.FloatField())


class RotationViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    """Rotations. Creating or changing one re-plans its unfrozen slots (services.rotation_save)."""

    serializer_class = RotationSerializer
    permission_classes = [ManagersWrite]
    queryset = Rotation.objects.select_related("team").prefetch_related("members__user").order_by("team__name", "name")
    filterset_fields = ["team", "layer", "is_active"]
    pagination_class = None

    def perform_create(self, serializer):
        serializer.instance = services.rotation_save(rotation=Rotation(**serializer.validated_data))

    def perform_update(self, serializer):
        rotation = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(rotation, field, value)
        serializer.instance = services.rotation_save(rotation=rotation)

    @extend_schema(request=RotationMemberSerializer, responses={201: RotationMemberSerializer})
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request: Request, pk=None) -> Response:
        """Add a member to a rotation."""
        rotation = self.get_object()
        data = RotationMemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.rotation_member_add(rotation=rotation, **data.validated_data)
        return Response(RotationMemberSerializer(member).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "start", OpenApiTypes.DATETIME, description="Window start (default end - fairness horizon)"
            ),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end (default now)"),
            OpenApiParameter("export", str, enum=["csv"], description="csv: download as a spreadsheet"),
        ],
        responses=FairnessReportSerializer,
    )
    @action(detail=True, methods=["get"], url_path="fairness")
    def fairness(self, request: Request, pk=None) -> Response | HttpResponse:
        """A rotation's fairness report, as JSON or CSV."""
        rotation = self.get_object()
        end = query_time(request, "end") or timezone.now()
        start = query_time(request, "start") or end - rotation.fairness_horizon
        if end <= start or end - start > timedelta(days=400):
            raise ApiValidationError({"end": ["The end must be after the start, at most 400 days later."]})
        report = selectors.fairness_report(rotation=rotation, start=start, end=end)
        if request.query_params.get("export") == "csv":
            response = HttpResponse(selectors.fairness_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="fairness-rotation-{rotation.pk}.csv"'
            return response
        return Response(FairnessReportSerializer(report).data)

    @extend_schema(request=MemberOrderSerializer, responses=RotationMemberSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="reorder-members")
    def reorder_members(self, request: Request, pk=None) -> Response:
        """Reorder a rotation's members."""
        rotation = self.get_object()
        data = MemberOrderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = [user.pk for user in data.validated_data["usernames"]]
        members = services.rotation_members_reorder(rotation=rotation, user_ids=ids)
        return Response(RotationMemberSerializer(members, many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<username>[^/]+)")
    def remove_member(self, request: Request, pk=None, username: str = "") -> Response:
        """Remove a member from a rotation."""
        rotation = self.get_object()
        member = get_object_or_404(RotationMember, rotation=rotation, user__username=username)
        services.rotation_member_remove(member=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShiftSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, allow_null=True)  # null: a gap
    planned_user = serializers.CharField(source="planned_user.username", read_only=True, allow_null=True)
    start = serializers.DateTimeField(source="period.lower", read_only=True)
    end = serializers.DateTimeField(source="period.upper", read_only=True)
    rotation_name = serializers.CharField(source="rotation.name", read_only=True)

    class Meta:
        model = Shift
        fields = [
            "id",
            "rotation",
            "rotation_name",
            "layer",
            "slot",
            "start",
            "end",
            "user",
            "planned_user",
            "source",
            "sequence",
        ]


class ShiftViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
    """Shifts overlapping `[start, end)` (default: the next 14 days; at most 92 days), oldest first."""

    serializer_class = ShiftSerializer
    filterset_class = ShiftFilter
    pagination_class = None

    def get_queryset(self):
        start, end = self._range()
        return selectors.shifts_in_range(start=start, end=end)

    def _range(self):
        if self.action != "list":
            now = timezone.now()
            return now - timedelta(days=36500), now + timedelta(days=36500)
        start = query_time(self.request, "start") or timezone.now()
        end = query_time(self.request, "end") or start + timedelta(days=14)
        if end <= start or end - start > MAX_RANGE:
            raise ApiValidationError({"end": ["The end must be after the start, at most 92 days later."]})
        return start, end


class OverrideSerializer(serializers.ModelSerializer):
    user = UserField()
    start = AwareDateTimeField(write_only=True)
    end = AwareDateTimeField(write_only=True)
    starts_at = serializers.DateTimeField(source="period.lower", read_only=True)
    ends_at = serializers.DateTimeField(source="period.upper", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Override
        fields = [
            "id",
            "rotation",
            "user",
            "start",
            "end",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
            "cancelled_at",
        ]
        read_only_fields = ["cancelled_at"]


class OverrideViewSet(
    StrictBodyMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Overrides. DELETE cancels (the plan comes back); a started override ends now. Managers give any shift to
    anyone; a member of a rotation takes a shift of it for themselves (and may cancel that one)."""

    serializer_class = OverrideSerializer
    filterset_class = OverrideFilter
    queryset = Override.objects.select_related("user", "created_by", "rotation").order_by("-id")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.override_create(
            rotation=data["rotation"], user=data["user"], start=data["start"], end=data["end"],
            reason=data.get("reason", ""), created_by=self.request.user,
        )  # fmt: skip

    def perform_destroy(self, instance):
        refusal = selectors.override_cancel_refusal(actor=self.request.user, override=instance)
        if refusal is not None:
            raise DjangoPermissionDenied(refusal)
        services.override_cancel(override=instance)


class SwapSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    counterparty = UserField()

    class Meta:
        model = Swap
        fields = [
            "id",
            "rotation",
            "requester",
            "counterparty",
            "requester_slot",
            "counterparty_slot",
            "status",
            "created_at",
            "decided_at",
        ]
        read_only_fields = ["status", "decided_at"]


class SwapViewSet(StrictBodyMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Swaps: the requester (you) proposes; the counterparty accepts or declines."""

    serializer_class = SwapSerializer
    filterset_fields = ["rotation", "status"]

    def get_queryset(self):
        queryset = Swap.objects.select_related("requester", "counterparty").order_by("-id")
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        if self.request.user.has_perm("oncall.change_rotation"):
            return queryset
        user = self.request.user
        return queryset.filter(requester=user) | queryset.filter(counterparty=user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.swap_request(
            rotation=data["rotation"], requester=self.request.user, counterparty=data["counterparty"],
            requester_slot=data["requester_slot"], counterparty_slot=data["counterparty_slot"],
        )  # fmt: skip

    @extend_schema(responses=SwapSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def accept(self, request: Request, pk=None) -> Response:
        """Accept a swap (the counterparty)."""
        swap = services.swap_accept(swap=self.get_object(), user=request.user)
        return Response(SwapSerializer(swap).data)

    @extend_schema(responses=SwapSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def decline(self, request: Request, pk=None) -> Response:
        """Decline a swap (the counterparty)."""
        swap = services.swap_decline(swap=self.get_object(), user=request.user)
        return Response(SwapSerializer(swap).data)


class UnavailabilitySerializer(serializers.ModelSerializer):
    user = UserField(required=False)
    start = AwareDateTimeField(write_only=True)
    end = AwareDateTimeField(write_only=True)
    starts_at = serializers.DateTimeField(source="period.lower", read_only=True)
    ends_at = serializers.DateTimeField(source="period.upper", read_only=True)

    class Meta:
        model = Unavailability
        fields = ["id", "user", "kind", "note", "start", "end", "starts_at", "ends_at"]


class UnavailabilityViewSet(
    StrictBodyMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Vacations and sick leave. Everyone manages their own; managers anyone's."""

    serializer_class = UnavailabilitySerializer
    filterset_class = UnavailabilityFilter

    def _is_manager(self) -> bool:
        return self.request.user.has_perm("oncall.change_unavailability")

    def get_queryset(self):
        queryset = Unavailability.objects.select_related("user").order_by("-id")
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return queryset if self._is_manager() else queryset.filter(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        user = data.get("user") or self.request.user
        if user != self.request.user and not self._is_manager():
            raise ApiValidationError({"user": ["You can record only your own unavailability."]})
        serializer.instance = services.unavailability_create(
            user=user, start=data["start"], end=data["end"], kind=data.get("kind", Unavailability.Kind.VACATION),
            note=data.get("note", ""),
        )  # fmt: skip

    def perform_destroy(self, instance):
        services.unavailability_delete(unavailability=instance)


class PersonSerializer(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField(source="get_full_name")


class OnCallEntrySerializer(serializers.Serializer):
    team = serializers.CharField(source="team_name")
    rotation = serializers.IntegerField(source="rotation.pk")
    rotation_name = serializers.CharField(source="rotation.name")
    layer = serializers.CharField()
    holder = PersonSerializer(allow_null=True)
    is_gap = serializers.BooleanField()
    until = serializers.DateTimeField(allow_null=True)
    next_holder = PersonSerializer(allow_null=True)
    next_from = serializers.DateTimeField(allow_null=True)


def _at(request: Request) -> datetime:
    return query_time(request, "at") or timezone.now()


class OnCallView(StrictBodyMixin, APIView):
    """Who is on call now (or `?at=`), per team and layer: holder, until, next holder."""

    @extend_schema(
        parameters=[
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="Instant (default now)"),
            OpenApiParameter("team", OpenApiTypes.INT, description="Only this team id"),
        ],
        responses=OnCallEntrySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        entries = selectors.oncall_now(at=_at(request), team_id=query_id(request, "team"))
        return Response(OnCallEntrySerializer(entries, many=True).data)


class ResolvedStepSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    position = serializers.IntegerField()
    delay_minutes = serializers.IntegerField()
    starts_after_minutes = serializers.SerializerMethodField()
    users = PersonSerializer(many=True)

    def get_starts_after_minutes(self, obj) -> int:
        return int(obj.starts_after.total_seconds() // 60)


class EscalationPolicySerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    chain = serializers.SerializerMethodField()

    class Meta:
        model = EscalationPolicy
        fields = ["id", "team", "name", "repeat", "chain"]

    @extend_schema_field(ResolvedStepSerializer(many=True))
    def get_chain(self, policy) -> list[dict]:
        chain = selectors.escalation_chain(policy=policy, at=self.context["at"], resolver=self.context.get("resolver"))
        return ResolvedStepSerializer(chain, many=True).data


class EscalationPolicyViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
    """Escalation policies with the chain resolved to people at `?at=` (default now)."""

    serializer_class = EscalationPolicySerializer
    pagination_class = None
    filterset_fields = ["team"]

    def get_queryset(self):
        return selectors.policies_with_steps().order_by("team__name", "name")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "at": _at(self.request)}

    def list(self, request: Request, *args, **kwargs) -> Response:
        policies = list(self.filter_queryset(self.get_queryset()))
        context = self.get_serializer_context()
        context["resolver"] = selectors.TargetResolver(policies, context["at"])
        return Response(EscalationPolicySerializer(policies, many=True, context=context).data)


class CalendarFeedSerializer(serializers.Serializer):
    url = serializers.CharField()


class CalendarFeedView(StrictBodyMixin, APIView):
    """Your personal iCal feed (all your shifts). POST rotates the token: the old URL stops working."""

    takes_body = False  # POST rotates, with nothing to say

    def _body(self, request: Request, feed) -> dict:
        return {"url": request.build_absolute_uri(reverse("oncall-feeds:person", args=[feed.token]))}

    @extend_schema(responses=CalendarFeedSerializer)
    def get(self, request: Request) -> Response:
        """Your personal iCal feed's URL."""
        return Response(self._body(request, services.calendar_feed_get_or_create(user=request.user)))

    @extend_schema(responses=CalendarFeedSerializer)
    def post(self, request: Request) -> Response:
        """Rotate your iCal feed's token; the old URL stops working."""
        return Response(self._body(request, services.calendar_feed_rotate(user=request.user)))
