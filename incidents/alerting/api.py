"""REST API for alerts (read) and integrations (read, create, regenerate the key). Views call services."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import CursorPagination, StrictBodyMixin
from incidents.alerting import selectors, services
from incidents.models import Alert, Integration, Service, Severity


class AlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Alert.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    suppressed = django_filters.ChoiceFilter(choices=Alert.Suppressed.choices[1:])
    service = django_filters.CharFilter(field_name="service__slug", help_text="Routed service slug")
    integration = django_filters.NumberFilter(field_name="integration_id")
    incident = django_filters.CharFilter(field_name="incident__ref", help_text="Incident reference")
    fingerprint = django_filters.CharFilter()
    received_after = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")

    class Meta:
        model = Alert
        fields = ["status", "severity", "suppressed", "service", "integration", "incident", "fingerprint"]


class AlertSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    incident = serializers.SlugRelatedField(slug_field="ref", read_only=True, allow_null=True)
    # blank when routing gave no severity; a read-only model field loses allow_blank (found by tests/fuzz)
    severity = serializers.ChoiceField(
        choices=Severity.choices, allow_blank=True, read_only=True, help_text="Routed; empty: none"
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "integration",
            "fingerprint",
            "group_key",
            "status",
            "title",
            "labels",
            "annotations",
            "starts_at",
            "ends_at",
            "received_at",
            "last_received_at",
            "repeat_count",
            "resolved_at",
            "acknowledged_at",
            "service",
            "severity",
            "actionable",
            "suppressed",
            "incident_due_at",
            "incident",
        ]
        read_only_fields = fields


class AlertPagination(CursorPagination):
    ordering = ("-received_at", "-id")


class AlertViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts as received, newest first; read by any signed-in user."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    pagination_class = AlertPagination

    def get_queryset(self):
        return selectors.alert_list()


class IntegrationSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    key_hint = serializers.CharField(read_only=True)

    class Meta:
        model = Integration
        fields = [
            "id",
            "service",
            "kind",
            "name",
            "key_hint",
            "key_rotated_at",
            "auto_resolve",
            "rate_limit_per_minute",
        ]
        read_only_fields = ["id", "key_hint", "key_rotated_at"]
        extra_kwargs = {"name": {"required": False, "allow_blank": True}}
        validators = []  # the service checks the unique name and answers 400 naming `name`


class IntegrationKeySerializer(IntegrationSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown only in this response")
    endpoint = serializers.CharField(read_only=True, help_text="Where the sender posts")

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "key", "endpoint"]


class CanManageIntegrations(permissions.BasePermission):
    """Reading needs a signed-in user; creating needs add_integration, regenerating change_integration."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) == "create":
            return request.user.has_perm("incidents.add_integration")
        return request.user.has_perm("incidents.change_integration")


def _with_key(integration: Integration, key: str) -> dict:
    data = IntegrationSerializer(integration).data
    return {**data, "key": key, "endpoint": selectors.integration_endpoint(integration=integration, key=key)}


class IntegrationViewSet(StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Integrations; the key is returned once, by create and by regenerate_key."""

    serializer_class = IntegrationSerializer
    permission_classes = [CanManageIntegrations]
    queryset = Integration.objects.select_related("service").order_by("id")
    pagination_class = None

    @extend_schema(request=IntegrationSerializer, responses={201: IntegrationKeySerializer})
    def create(self, request):
        """Create an integration; the answer holds its key, shown only this once."""
        serializer = IntegrationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration, key = services.integration_create(**serializer.validated_data)
        return Response(_with_key(integration, key), status=status.HTTP_201_CREATED)

    @extend_schema(responses=IntegrationKeySerializer)
    @action(detail=True, methods=["post"], url_path="regenerate-key", takes_body=False)
    def regenerate_key(self, request, pk=None):
        """Replace an integration's key; the answer holds the new one, shown only this once."""
        integration = self.get_object()
        key = services.integration_regenerate_key(integration=integration)
        integration.refresh_from_db()
        return Response(_with_key(integration, key))
