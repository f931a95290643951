"""REST endpoints of the response features: the runbooks an incident showed, its automated actions, and
the stale-runbook list. Views validate, call a selector or service, and serialize."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import StrictBodyMixin, query_id
from incidents import stakeholders
from incidents.automation import selectors as automation_selectors
from incidents.automation import services as automation_services
from incidents.models import AutomationRule, AutomationRun, Incident, IncidentRunbook, Service, Subscription
from incidents.runbooks import rendering
from incidents.runbooks import selectors as runbook_selectors


class IncidentRunbookSerializer(serializers.ModelSerializer):
    runbook = serializers.IntegerField(source="runbook_id")
    title = serializers.CharField(source="runbook.title")
    version = serializers.IntegerField(source="version.number")
    current_version = serializers.IntegerField(source="runbook.current_version.number", allow_null=True)
    html = serializers.SerializerMethodField()

    class Meta:
        model = IncidentRunbook
        fields = ["runbook", "title", "version", "current_version", "matched_by", "attached_at", "html"]

    def get_html(self, obj: IncidentRunbook) -> str:
        return rendering.render_runbook(obj.version.body)


class AutomationRunSerializer(serializers.ModelSerializer):
    action = serializers.CharField(source="action.name")
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AutomationRun
        fields = [
            "id", "action", "rule", "requested_by", "status", "created_at", "started_at", "finished_at",
            "request_method", "request_url", "response_code", "response_body", "duration_ms", "error",
        ]  # fmt: skip


class RunRequestSerializer(serializers.Serializer):
    rule = serializers.IntegerField(help_text="The id of a rule offered for this incident")


def _incident(ref: str) -> Incident:
    return get_object_or_404(Incident.objects.select_related("service__team"), ref__iexact=ref)


class IncidentRunbooksView(StrictBodyMixin, APIView):
    """The runbooks an incident showed, at the version it showed."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=IncidentRunbookSerializer(many=True))
    def get(self, request: Request, ref: str) -> Response:
        incident = _incident(ref)
        links = runbook_selectors.incident_runbook_links(incident_id=incident.pk)
        return Response(IncidentRunbookSerializer(links, many=True).data)


class IncidentAutomationView(StrictBodyMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=AutomationRunSerializer(many=True))
    def get(self, request: Request, ref: str) -> Response:
        """The automated actions run for an incident."""
        incident = _incident(ref)
        runs = automation_selectors.incident_runs(incident_id=incident.pk)
        return Response(AutomationRunSerializer(runs, many=True).data)

    @extend_schema(request=RunRequestSerializer, responses={201: AutomationRunSerializer})
    def post(self, request: Request, ref: str) -> Response:
        """Run an automated action offered by a rule for this incident."""
        if not request.user.has_perm("incidents.add_automationrun"):
            self.permission_denied(request, message="You may not run automated actions.")
        serializer = RunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident = _incident(ref)
        rules = {rule.pk: rule for rule in automation_selectors.rules_matching(incident=incident)}
        rule = rules.get(serializer.validated_data["rule"])
        if rule is None:
            get_object_or_404(AutomationRule, pk=serializer.validated_data["rule"])
            raise serializers.ValidationError({"rule": [f"This rule does not apply to {incident.ref}."]})
        run = automation_services.automation_run_request(
            action=rule.action, incident=incident, actor=request.user, rule=rule
        )
        return Response(AutomationRunSerializer(run).data, status=status.HTTP_201_CREATED)


class StaleRunbookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    service = serializers.CharField()
    team = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    last_edited_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class StaleRunbooksView(StrictBodyMixin, APIView):
    """Runbooks due for review, with the reasons."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("team", OpenApiTypes.INT, description="Only this team id")],
        responses=StaleRunbookSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(runbook_selectors.runbooks_stale(team_id=query_id(request, "team")))


class SubscriptionSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(
        slug_field="slug", queryset=Service.objects.all(), required=False, allow_null=True
    )
    incident = serializers.SlugRelatedField(
        slug_field="ref", queryset=Incident.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Subscription
        fields = ["id", "service", "incident", "created_at"]
        read_only_fields = ["id", "created_at"]


class SubscriptionViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in user's own subscriptions to stakeholder updates of a service (slug) or an incident (ref)."""

    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None

    queryset = Subscription.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return (
            Subscription.objects.filter(user=self.request.user)
            .select_related("service", "incident")
            .order_by("-created_at", "-id")
        )

    def create(self, request: Request) -> Response:
        """Subscribe to the stakeholder updates of a service or an incident."""
        serializer = SubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = stakeholders.subscription_create(
            actor=request.user,
            service=serializer.validated_data.get("service"),
            incident=serializer.validated_data.get("incident"),
            user=request.user,
        )
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Subscription) -> None:
        stakeholders.subscription_delete(subscription=instance)
