"""The incident page's response panel (runbooks shown, automation buttons and runs) and the admin of chat
settings, subscriptions and game days. Imported at the end of incidents/admin.py."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from incidents import stakeholders
from incidents.admin import IncidentAdmin, _error_text
from incidents.admin_errors import ServiceErrorsMixin
from incidents.automation import admin as automation_admin  # noqa: F401 - registers the automation admin
from incidents.automation import selectors as automation_selectors
from incidents.automation import services as automation_services
from incidents.gamedays import services as gameday_services
from incidents.models import (
    AutomationRule,
    GameDay,
    Incident,
    Subscription,
    TeamChatSettings,
)
from incidents.runbooks import admin as runbook_admin  # noqa: F401 - registers the runbook admin
from incidents.runbooks import rendering
from incidents.runbooks import selectors as runbook_selectors
from oncall.errors import DomainError
from oncall.roles import is_manager


class ResponseIncidentAdmin(IncidentAdmin):
    change_form_template = "admin/incidents/incident/response_change_form.html"

    def get_urls(self):
        return [
            path(
                "<int:pk>/automation/<int:rule_pk>/run/",
                self.admin_site.admin_view(self.automation_view),
                name="incidents_incident_automation",
            ),
            *super().get_urls(),
        ]

    def automation_view(self, request, pk: int, rule_pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = get_object_or_404(Incident.objects.select_related("service"), pk=pk)
        if not request.user.has_perm("incidents.add_automationrun"):
            raise PermissionDenied
        rule = get_object_or_404(AutomationRule.objects.select_related("action"), pk=rule_pk)
        if rule.pk not in {r.pk for r in automation_selectors.rules_matching(incident=incident)}:
            self.message_user(request, f"{rule.action} does not apply to {incident.ref}.", messages.ERROR)
        else:
            try:
                automation_services.automation_run_request(
                    action=rule.action, incident=incident, actor=request.user, rule=rule
                )
            except (DomainError, ValidationError) as exc:
                self.message_user(request, _error_text(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"{rule.action} requested; its run appears on the timeline.", messages.SUCCESS
                )
        return HttpResponseRedirect(reverse("admin:incidents_incident_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        offered = []
        if obj is not None and obj.is_open and request.user.has_perm("incidents.add_automationrun"):
            offered = [r for r in automation_selectors.offered_actions(incident=obj) if not r.auto]
        context["automation_rules"] = offered
        if obj is not None:
            # read-only panels, not inlines: they add no formsets to the change form
            context["runbook_links"] = [
                (link, mark_safe(rendering.render_runbook(link.version.body)))  # noqa: S308 - sanitised by nh3
                for link in runbook_selectors.incident_runbook_links(incident_id=obj.pk)
            ]
            context["automation_runs"] = list(automation_selectors.incident_runs(incident_id=obj.pk)[:50])
        return super().render_change_form(request, context, add, change, form_url, obj)


admin.site.unregister(Incident)
admin.site.register(Incident, ResponseIncidentAdmin)


@admin.register(TeamChatSettings)
class TeamChatSettingsAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["team", "slack_webhook_url"]
    list_select_related = ["team"]
    autocomplete_fields = ["team"]


class SubscriptionForm(forms.ModelForm):
    """Checked by the service's rule (stakeholders.subscription_check), as the API is: errors name the field."""

    actor = None  # set per request by SubscriptionAdmin.get_form

    class Meta:
        model = Subscription
        fields = ["service", "incident", "user", "email"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            stakeholders.subscription_check(
                actor=self.actor,
                service=cleaned.get("service"),
                incident=cleaned.get("incident"),
                user=cleaned.get("user", self.actor if "user" not in self.fields else None),
                email=cleaned.get("email", ""),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    """Managers subscribe anyone, also outside addresses; everyone else subscribes themselves (as in the API)."""

    form = SubscriptionForm
    list_display = ["created_at", "user", "email", "service", "incident"]
    list_select_related = ["user", "service", "incident"]
    autocomplete_fields = ["user", "service", "incident"]
    search_fields = ["email", "user__username", "service__name", "=incident__ref"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if is_manager(request.user) else queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        return ["service", "incident", "user", "email"] if is_manager(request.user) else ["service", "incident"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)  # delete and add again, via the rule

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        subscription = stakeholders.subscription_create(
            actor=request.user,
            service=data.get("service"),
            incident=data.get("incident"),
            user=data.get("user") if "user" in data else request.user,
            email=data.get("email", ""),
        )
        for field in Subscription._meta.concrete_fields:  # the admin goes on with `obj` (log entry, redirect)
            setattr(obj, field.attname, getattr(subscription, field.attname))
        obj._state.adding = False


class GameDayForm(forms.ModelForm):
    class Meta:
        model = GameDay
        fields = [
            "title", "hypothesis", "scheduled_for", "services", "facilitator", "blast_radius", "abort_criteria",
            "outcome", "findings",
        ]  # fmt: skip


@admin.register(GameDay)
class GameDayAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = GameDayForm
    list_display = ["title", "scheduled_for", "status", "outcome", "facilitator"]
    list_filter = ["status", "outcome"]
    list_select_related = ["facilitator"]
    search_fields = ["title"]
    autocomplete_fields = ["services", "facilitator"]
    readonly_fields = ["status", "started_at", "ended_at"]
    ordering = ["-scheduled_for", "-id"]
    actions = ["start_selected", "abort_selected"]

    def save_model(self, request, obj, form, change):
        running = change and GameDay.objects.filter(pk=obj.pk, status=GameDay.Status.RUNNING).exists()
        outcome = form.cleaned_data.get("outcome")
        if running and outcome:
            obj.outcome = ""  # completion goes through the service
            super().save_model(request, obj, form, change)
            # a refusal raises: the edit above rolls back with it and the form comes back with the message
            gameday_services.gameday_complete(
                game_day=obj, actor=request.user, outcome=outcome, findings=form.cleaned_data.get("findings", "")
            )
            return
        if not running:
            obj.outcome = obj.outcome if obj.status == GameDay.Status.COMPLETED else ""
        super().save_model(request, obj, form, change)

    @admin.action(description="Start selected game days (declares practice incidents)", permissions=["change"])
    def start_selected(self, request, queryset):
        for game_day in queryset:
            try:
                incidents = gameday_services.gameday_start(game_day=game_day, actor=request.user)
                refs = ", ".join(i.ref for i in incidents)
                self.message_user(request, f"{game_day}: started, practice incidents {refs}.", messages.SUCCESS)
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{game_day}: {_error_text(exc)}", messages.ERROR)

    @admin.action(description="Abort selected game days", permissions=["change"])
    def abort_selected(self, request, queryset):
        for game_day in queryset:
            try:
                gameday_services.gameday_abort(game_day=game_day, actor=request.user, reason="aborted in the admin")
            except (DomainError, ValidationError) as exc:
                self.message_user(request, f"{game_day}: {_error_text(exc)}", messages.ERROR)
