"""Admin for integrations (routes inline), alerts and maintenance windows. Imported by incidents/admin.py."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin_errors import ServiceErrorsMixin
from incidents.alerting import routing, selectors, services
from incidents.models import Alert, AlertRoute, Integration, MaintenanceWindow
from oncall.audit import AuditedAdminMixin, audit_action


class AlertRouteForm(forms.ModelForm):
    class Meta:
        model = AlertRoute
        fields = ["position", "matchers", "severity", "service", "flap_delay"]

    def clean_matchers(self):
        matchers = self.cleaned_data.get("matchers") or {}
        try:
            return routing.validate_matchers(matchers)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["matchers"]) from exc


class AlertRouteInline(admin.TabularInline):
    model = AlertRoute
    form = AlertRouteForm
    fk_name = "integration"
    extra = 0
    autocomplete_fields = ["service"]
    ordering = ["position", "id"]
    verbose_name_plural = "routes (first match wins; no match: the integration's service and the severity label)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("service")


def _key_message(integration: Integration, key: str) -> str:
    endpoint = selectors.integration_endpoint(integration=integration, key=key)
    if integration.kind == Integration.Kind.PAGERDUTY_V2:
        return f"{integration.name}: routing key {key} (events URL {endpoint}). Copy it now: it is not shown again."
    return f"{integration.name}: send alerts to {endpoint} . Copy it now: the key is not shown again."


@admin.register(Integration)
class IntegrationAdmin(ServiceErrorsMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "service", "kind", "key_hint_display", "auto_resolve", "rate_limit_per_minute"]
    list_filter = ["kind", "service__team", "auto_resolve"]
    list_select_related = ["service"]
    search_fields = ["name", "service__name", "service__slug"]
    autocomplete_fields = ["service"]
    readonly_fields = ["key_hint_display", "key_rotated_at", "created_at"]
    fields = ["service", "kind", "name", "auto_resolve", "rate_limit_per_minute", *readonly_fields]
    inlines = [AlertRouteInline]
    actions = ["regenerate_keys"]

    @admin.display(description="Key")
    def key_hint_display(self, obj: Integration) -> str:
        return f"{obj.key_hint}…" if obj.key_hint else "—"

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "kind"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # name, switches, limit: plain settings
            return
        data = form.cleaned_data
        integration, key = services.integration_create(
            service=data["service"],
            kind=data["kind"],
            name=data.get("name", ""),
            auto_resolve=data.get("auto_resolve", True),
            rate_limit_per_minute=data.get("rate_limit_per_minute") or 600,
        )
        for field in Integration._meta.concrete_fields:
            setattr(obj, field.attname, getattr(integration, field.attname))
        obj._state.adding = False
        obj._state.db = integration._state.db
        self.message_user(request, _key_message(integration, key), messages.WARNING)

    @admin.action(
        description="Regenerate the key of selected integrations (old keys stop working)", permissions=["change"]
    )
    def regenerate_keys(self, request, queryset):
        for integration in queryset:
            key = services.integration_regenerate_key(integration=integration)
            self.message_user(request, _key_message(integration, key), messages.WARNING)
        audit_action(request=request, objects=queryset, description="key regenerated")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "title",
        "status",
        "severity",
        "service",
        "integration",
        "incident_link",
        "suppressed",
        "repeat_count",
    ]
    list_filter = ["status", "suppressed", "actionable", "severity", "integration__kind", "service"]
    list_select_related = ["integration__service", "service", "incident"]
    search_fields = ["=fingerprint", "title", "=incident__ref"]
    ordering = ["-received_at", "-id"]
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = [field.name for field in Alert._meta.concrete_fields]
    NOISE_DAYS = (1, 7, 30, 90)

    def get_urls(self):
        noise = path("noise/", self.admin_site.admin_view(self.noise_view), name="incidents_alert_noise")
        return [noise, *super().get_urls()]

    def noise_view(self, request):
        """The noisiest alerts: what to tune or delete first (alert fatigue)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", 7))
        except ValueError:
            days = 7
        days = days if days in self.NOISE_DAYS else 7
        since = timezone.now() - timedelta(days=days)
        context = {
            **self.admin_site.each_context(request),
            "title": "Noisiest alerts",
            "opts": self.model._meta,
            "rows": selectors.alert_noise(since=since),
            "since": since,
            "days": days,
            "day_options": self.NOISE_DAYS,
        }
        return TemplateResponse(request, "admin/incidents/alert/noise.html", context)

    @admin.display(description="Incident", ordering="incident__ref")
    def incident_link(self, obj: Alert) -> str:
        if obj.incident is None:
            return "—"
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">{}</a>', url, obj.incident.ref)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["service", "starts_at", "ends_at", "reason", "created_by"]
    list_filter = ["service__team", "service"]
    list_select_related = ["service", "created_by"]
    search_fields = ["service__name", "reason"]
    autocomplete_fields = ["service"]
    readonly_fields = ["created_by"]
    ordering = ["-starts_at", "-id"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
