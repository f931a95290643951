"""REST API for incidents: views validate with a serializer, call a service or selector, serialize."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import CursorPagination, StrictBodyMixin
from incidents import selectors, services
from incidents.filters import IncidentFilter
from incidents.models import (
    Incident,
    IncidentEvent,
    IncidentRoleAssignment,
    Service,
    Severity,
    SeverityPolicy,
    StatusUpdate,
)

User = get_user_model()


class CanWorkIncidents(permissions.BasePermission):
    """Reading needs a signed-in user; declaring needs add_incident; correcting times is for managers (the
    service's rule, checked here first so a refusal is 403 before the body is read); everything else
    change_incident."""

    message = "You do not have permission to work incidents."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) == "create":
            return request.user.has_perm("incidents.add_incident")
        if getattr(view, "action", None) == "times":
            if services.can_correct_times(request.user):
                return True
            self.message = "Only managers correct incident times."
            return False
        return request.user.has_perm("incidents.change_incident")


class UsernameField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", User.objects.filter(is_active=True))
        super().__init__(**kwargs)


class IncidentRefField(serializers.SlugRelatedField):
    """An incident by its ref, among the incidents the requesting user may read (the list's queryset)."""

    default_error_messages = {
        "does_not_exist": "No incident {value}.",
        "invalid": "Give an incident reference such as INC-2026-14.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "ref")
        kwargs.setdefault("queryset", Incident.objects.all())  # the schema's type; lookups use get_queryset
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return selectors.incidents_visible_to(user=request.user if request else None)


class IncidentSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.CharField(source="service.team.slug", read_only=True)
    commander = serializers.CharField(source="commander.username", read_only=True, default=None, allow_null=True)
    comms_lead = serializers.CharField(source="comms_lead.username", read_only=True, default=None, allow_null=True)
    duplicate_of = serializers.SlugRelatedField(slug_field="ref", read_only=True, allow_null=True)
    repeat_of = serializers.SlugRelatedField(slug_field="ref", read_only=True, allow_null=True)
    # blank while the incident is not cancelled (schema found by fuzzing: tests/fuzz)
    closure_reason = serializers.ChoiceField(choices=Incident.ClosureReason.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "ref",
            "title",
            "summary",
            "severity",
            "status",
            "service",
            "team",
            "started_at",
            "detected_at",
            "declared_at",
            "acknowledged_at",
            "mitigated_at",
            "resolved_at",
            "closed_at",
            "commander",
            "comms_lead",
            "channel",
            "is_practice",
            "closure_reason",
            "duplicate_of",
            "repeat_of",
            "source",
        ]
        read_only_fields = fields


class DeclareSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    started_at = serializers.DateTimeField(required=False)
    detected_at = serializers.DateTimeField(required=False)
    is_practice = serializers.BooleanField(required=False, default=False)
    commander = UsernameField(required=False)
    repeat_of = IncidentRefField(required=False, help_text="Ref of an earlier incident this one repeats")


class IncidentUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    summary = serializers.CharField(required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    repeat_of = IncidentRefField(
        required=False, allow_null=True, help_text="Ref of an earlier incident this one repeats; null unlinks it"
    )


class CorrectTimesSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField(required=False)
    detected_at = serializers.DateTimeField(required=False)
    acknowledged_at = serializers.DateTimeField(required=False, allow_null=True)
    mitigated_at = serializers.DateTimeField(required=False, allow_null=True)
    resolved_at = serializers.DateTimeField(required=False, allow_null=True)
    closed_at = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if not set(attrs) - {"reason"}:
            raise serializers.ValidationError("Give at least one timestamp to correct.")
        return attrs


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True, default="")


class CancelSerializer(serializers.Serializer):
    closure_reason = serializers.ChoiceField(choices=Incident.ClosureReason.choices)
    duplicate_of = IncidentRefField(required=False)
    message = serializers.CharField(required=False, allow_blank=True, default="")


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=IncidentRoleAssignment.Role.choices)
    user = UsernameField()


class NoteSerializer(serializers.Serializer):
    message = serializers.CharField()


class StatusUpdateSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True, allow_null=True)

    class Meta:
        model = StatusUpdate
        fields = ["id", "at", "author", "message", "audience"]
        read_only_fields = ["id", "at", "author"]


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True)  # null: the system

    class Meta:
        model = IncidentEvent
        fields = ["id", "at", "recorded_at", "kind", "actor", "message", "data"]
        read_only_fields = fields


class IncidentPagination(CursorPagination):
    ordering = ("-declared_at", "-id")


class IncidentViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents: list with filters, declare, and one POST action per lifecycle transition."""

    permission_classes = [CanWorkIncidents]
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    lookup_field = "ref"
    lookup_value_regex = "[^/]+"
    pagination_class = IncidentPagination

    def get_queryset(self):
        if self.action == "list":
            return selectors.incident_list()
        return selectors.incident_detail()

    def _respond(self, incident: Incident, code: int = status.HTTP_200_OK) -> Response:
        incident = selectors.incident_detail().get(pk=incident.pk)
        return Response(IncidentSerializer(incident).data, status=code)

    @extend_schema(request=DeclareSerializer, responses={201: IncidentSerializer})
    def create(self, request):
        """Declare an incident."""
        serializer = DeclareSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        incident = services.incident_declare(actor=request.user, **serializer.validated_data)
        return self._respond(incident, status.HTTP_201_CREATED)

    @extend_schema(request=IncidentUpdateSerializer, responses=IncidentSerializer)
    def partial_update(self, request, ref=None):
        """Edit an incident's title, summary, severity or the incident it repeats."""
        serializer = IncidentUpdateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        incident = services.incident_update(incident=self.get_object(), actor=request.user, **serializer.validated_data)
        return self._respond(incident)

    @extend_schema(responses=IncidentSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def acknowledge(self, request, ref=None):
        """Acknowledge an incident; paging stops."""
        return self._respond(services.incident_acknowledge(incident=self.get_object(), actor=request.user))

    @extend_schema(responses=IncidentSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def mitigate(self, request, ref=None):
        """Mark an incident mitigated."""
        return self._respond(services.incident_mitigate(incident=self.get_object(), actor=request.user))

    @extend_schema(request=MessageSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, ref=None):
        """Resolve an incident."""
        serializer = MessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = services.incident_resolve(
            incident=self.get_object(), actor=request.user, **serializer.validated_data
        )
        return self._respond(incident)

    @extend_schema(responses=IncidentSerializer)
    @action(detail=True, methods=["post"], takes_body=False)
    def close(self, request, ref=None):
        """Close a resolved incident (a required postmortem must be published)."""
        return self._respond(services.incident_close(incident=self.get_object(), actor=request.user))

    @extend_schema(request=MessageSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, ref=None):
        """Reopen a resolved incident (within 7 days)."""
        serializer = MessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = services.incident_reopen(incident=self.get_object(), actor=request.user, **serializer.validated_data)
        return self._respond(incident)

    @extend_schema(request=CancelSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, ref=None):
        """Cancel an incident: duplicate, false positive or cancelled."""
        serializer = CancelSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        incident = services.incident_cancel(
            incident=self.get_object(),
            actor=request.user,
            reason=data["closure_reason"],
            duplicate_of=data.get("duplicate_of"),
            message=data["message"],
        )
        return self._respond(incident)

    @extend_schema(request=CorrectTimesSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def times(self, request, ref=None):
        """Correct an incident's timestamps.

        Back-fill or correct them; the timeline records old and new values."""
        serializer = CorrectTimesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("reason")
        incident = services.incident_correct_times(
            incident=self.get_object(), actor=request.user, reason=reason, **data
        )
        return self._respond(incident)

    @extend_schema(request=RoleSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def roles(self, request, ref=None):
        """Assign the commander or the communications lead."""
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = services.incident_assign_role(
            incident=self.get_object(),
            actor=request.user,
            user=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )
        return self._respond(incident)

    @extend_schema(request=NoteSerializer, responses={201: EventSerializer})
    @action(detail=True, methods=["post"])
    def notes(self, request, ref=None):
        """Add a note to an incident's timeline."""
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.incident_add_note(incident=self.get_object(), actor=request.user, **serializer.validated_data)
        return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"], summary="List an incident's status updates", responses=StatusUpdateSerializer(many=True)
    )
    @extend_schema(
        methods=["POST"],
        summary="Post a status update",
        request=StatusUpdateSerializer,
        responses={201: StatusUpdateSerializer},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def updates(self, request, ref=None):
        incident = self.get_object()
        if request.method == "GET":
            return Response(StatusUpdateSerializer(selectors.status_updates(incident=incident), many=True).data)
        serializer = StatusUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.status_update_create(incident=incident, author=request.user, **serializer.validated_data)
        return Response(StatusUpdateSerializer(update).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def timeline(self, request, ref=None):
        """An incident's timeline, oldest first."""
        incident = get_object_or_404(Incident, ref=ref)
        return Response(EventSerializer(selectors.incident_timeline(incident=incident), many=True).data)


class ServiceSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Service
        fields = ["id", "name", "slug", "team", "description"]


class ServiceViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ServiceSerializer
    queryset = Service.objects.select_related("team").order_by("name")
    lookup_field = "slug"
    pagination_class = None


class SeverityPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = SeverityPolicy
        fields = [
            "severity",
            "name",
            "definition",
            "response_target",
            "update_cadence",
            "postmortem_required",
            "postmortem_deadline",
            "channel_required",
        ]


class SeverityPolicyViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = SeverityPolicySerializer
    queryset = SeverityPolicy.objects.order_by("severity")
    lookup_field = "severity"
    pagination_class = None
