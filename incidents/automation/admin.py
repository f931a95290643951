"""Automation admin: actions (templates checked), rules, and the audit of every run (failures visible)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from incidents.admin_errors import ServiceErrorsMixin
from incidents.automation import services, templating
from incidents.models import AutomationAction, AutomationRule, AutomationRun
from oncall.errors import DomainError

RUN_COLOURS = {"succeeded": "#2e7d32", "failed": "#b3001b", "refused": "#b3001b", "running": "#c99a00"}


class AutomationActionForm(forms.ModelForm):
    class Meta:
        model = AutomationAction
        fields = ["name", "description", "url", "method", "payload_template", "secret", "timeout_seconds", "is_active"]
        widgets = {"secret": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # the stored secret is never sent back to the browser; empty keeps it
            self.fields["secret"].required = False
            self.fields["secret"].help_text = "Leave empty to keep the current secret."

    def clean_secret(self):
        value = self.cleaned_data.get("secret", "")
        return value or (self.instance.secret if self.instance.pk else value)

    def clean_payload_template(self):
        value = self.cleaned_data.get("payload_template", "")
        try:
            templating.check_template(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["payload_template"]) from exc
        return value


class AutomationRuleInline(admin.TabularInline):
    model = AutomationRule
    extra = 0
    fields = ["service", "severity", "alert_name", "auto", "is_active"]
    autocomplete_fields = ["service"]


@admin.register(AutomationAction)
class AutomationActionAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = AutomationActionForm
    list_display = ["name", "method", "url", "timeout_seconds", "is_active"]
    search_fields = ["name", "url"]
    inlines = [AutomationRuleInline]


@admin.register(AutomationRule)
class AutomationRuleAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["action", "service", "severity", "alert_name", "auto", "is_active"]
    list_filter = ["auto", "is_active", "severity"]
    list_select_related = ["action", "service"]
    autocomplete_fields = ["action", "service"]


@admin.register(AutomationRun)
class AutomationRunAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "incident", "status_badge", "requested", "response_code", "duration_ms"]
    list_filter = ["status", "action"]
    list_select_related = ["action", "incident", "rule", "requested_by"]
    search_fields = ["=incident__ref", "action__name"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    readonly_fields = [
        "action", "incident", "rule", "requested_by", "status", "created_at", "started_at", "finished_at",
        "request_method", "request_url", "request_body", "response_code", "response_body", "duration_ms", "error",
    ]  # fmt: skip

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: AutomationRun) -> str:
        from incidents.admin import badge

        return badge(obj.get_status_display(), RUN_COLOURS.get(obj.status, "#5b6f82"))

    @admin.display(description="Requested by")
    def requested(self, obj: AutomationRun) -> str:
        if obj.requested_by_id:
            return str(obj.requested_by)
        return f"rule #{obj.rule_id}" if obj.rule_id else "—"

    actions = ["run_again"]

    @admin.action(description="Run the selected actions again (a new run each)", permissions=["rerun"])
    def run_again(self, request, queryset):
        for run in queryset.select_related("action", "incident", "rule"):
            try:
                again = services.automation_run_request(
                    action=run.action, incident=run.incident, actor=request.user, rule=run.rule
                )
            except DomainError as exc:
                self.message_user(request, f"{run.incident.ref}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{run.incident.ref}: {run.action} requested again (run {again.pk}).")

    def has_rerun_permission(self, request) -> bool:
        return request.user.has_perm("incidents.add_automationrun")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
