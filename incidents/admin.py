"""The incident admin: the main UI. Every change goes through incidents.services."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from incidents import services
from incidents.admin_errors import ServiceErrorsMixin, refusal_text
from incidents.models import (
    Escalation,
    Incident,
    IncidentEvent,
    IncidentRoleAssignment,
    Service,
    SeverityPolicy,
    StatusUpdate,
)
from oncall.audit import AuditedAdminMixin
from oncall.errors import DomainError

SEVERITY_COLOURS = {"P0": "#b3001b", "P1": "#e0580c", "P2": "#c99a00", "P3": "#5b6f82"}
STATUS_COLOURS = {
    "triggered": "#b3001b",
    "acknowledged": "#e0580c",
    "mitigated": "#c99a00",
    "resolved": "#2e7d32",
    "closed": "#5b6f82",
    "cancelled": "#8a8a8a",
}
TRANSITIONS = {
    "acknowledge": services.incident_acknowledge,
    "mitigate": services.incident_mitigate,
    "resolve": services.incident_resolve,
    "close": services.incident_close,
    "reopen": services.incident_reopen,
}
REF_PATTERN = re.compile(r"^INC-\d{4}-\d+$", re.IGNORECASE)
CORRECTABLE_TIMES = ["started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at"]


class CappedCountPaginator(Paginator):
    """Counts at most `cap` + 1 rows (`SELECT COUNT(*) FROM (… LIMIT cap + 1)`): the changelist's COUNT(*) over
    every matching incident was most of the page's database time at a million rows (bench/RESULTS.md).
    Beyond the cap the list says "10001 incidents" and pages up to there; filters and search narrow it."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()


def badge(text: str, colour: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;border-radius:4px;padding:1px 7px;font-weight:600;'
        'white-space:nowrap">{}</span>',
        colour,
        text,
    )


def humanize_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d"


class DeclareForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = [
            "title", "severity", "service", "summary", "started_at", "detected_at", "is_practice", "commander",
            "repeat_of",
        ]  # fmt: skip
        help_texts = {
            "repeat_of": "An earlier incident this one repeats (one resolved too long ago to reopen).",
            "started_at": "When impact began, if earlier than detection. Empty: the detection time.",
            "detected_at": "Empty: now.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["started_at"].required = False
        self.fields["detected_at"].required = False


class IncidentChangeForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ["title", "summary", "severity", "commander", "comms_lead", "repeat_of", *CORRECTABLE_TIMES]
        widgets = {"title": forms.TextInput(attrs={"class": "vLargeTextField", "style": "width:40em"})}

    def clean(self):
        cleaned = super().clean()
        values = {name: getattr(self.instance, name) for name in services.BACKFILLABLE}
        values.update({name: cleaned.get(name) for name in CORRECTABLE_TIMES if name in cleaned})
        for name in ("started_at", "detected_at"):
            if not values.get(name) and name not in self.errors:
                self.add_error(name, f"{services.field_label(name)} is required.")
        try:
            services.check_time_order(values)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class StatusUpdateInline(admin.TabularInline):
    model = StatusUpdate
    extra = 1
    fields = ["at", "author", "audience", "message"]
    readonly_fields = ["at", "author"]
    can_delete = False
    verbose_name = "status update"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return obj is not None and obj.is_open and request.user.has_perm("incidents.add_statusupdate")


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0
    fields = ["at", "kind", "actor", "message"]
    readonly_fields = fields
    can_delete = False
    verbose_name = "timeline event"
    verbose_name_plural = "timeline"
    ordering = ["at", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RoleAssignmentInline(admin.TabularInline):
    model = IncidentRoleAssignment
    fk_name = "incident"
    extra = 0
    fields = ["role", "user", "assigned_at", "released_at", "assigned_by"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "role history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "assigned_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["reference", "title", "severity_badge", "status_badge", "service", "team", "age", "commander"]
    list_display_links = ["reference", "title"]
    # declared_at as a list filter (today / past 7 days / this month / this year: no query of its own), not a
    # date_hierarchy: the hierarchy's year links are SELECT DISTINCT date_trunc(…) over every matching row,
    # 0.8 s of the 0.84 s the list took at 1M incidents (bench/RESULTS.md)
    list_filter = ["status", "severity", ("declared_at", admin.DateFieldListFilter), "service__team", "service",
                   "is_practice", "source"]  # fmt: skip
    list_select_related = ["service__team", "commander"]
    search_fields = ["=ref", "title"]
    ordering = ["-declared_at", "-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    autocomplete_fields = ["service", "commander", "comms_lead", "repeat_of"]
    actions = ["acknowledge_selected", "mitigate_selected", "resolve_selected"]
    change_form_template = "admin/incidents/incident/change_form.html"
    readonly_fields = [
        "ref",
        "status",
        "service",
        "declared_at",
        "closed_at",
        "channel",
        "source",
        "closure_reason",
        "duplicate_of",
        "is_practice",
        "created_by",
        "paging",
    ]
    fieldsets = [
        (None, {"fields": ["ref", "title", "summary", ("severity", "status"), "service", "channel"]}),
        ("People", {"fields": [("commander", "comms_lead"), "created_by", "paging"]}),
        (
            "Times (UTC; corrections are recorded on the timeline)",
            {"fields": [*CORRECTABLE_TIMES, "declared_at", "closed_at"]},
        ),
        ("Closure and links", {"fields": ["closure_reason", "duplicate_of", "repeat_of", "is_practice", "source"]}),
    ]
    inlines = [StatusUpdateInline, IncidentEventInline, RoleAssignmentInline]

    @admin.display(description="Paging")
    def paging(self, obj: Incident) -> str:
        escalation = Escalation.objects.select_related("policy").filter(incident=obj).first()
        if escalation is None:
            return "—"
        policy = escalation.policy.name if escalation.policy else "team managers (the service has no policy)"
        if escalation.status == Escalation.Status.RUNNING:
            return f"{policy}: running, next step {escalation.step_index + 1} at {escalation.next_run_at:%H:%M:%S} UTC"
        return f"{policy}: {escalation.get_status_display().lower()} after {escalation.step_index} step(s)"

    def get_search_results(self, request, queryset, search_term):
        """A reference (INC-<year>-<n>) is looked up by the unique index on `ref` alone: the default search
        (`UPPER(ref) = … OR UPPER(title) LIKE …`) reads every row (bench/RESULTS.md, admin list)."""
        term = search_term.strip()
        if REF_PATTERN.match(term):
            return queryset.filter(ref__in={term, term.upper()}), False
        return super().get_search_results(request, queryset, search_term)

    # --- list columns -------------------------------------------------------------------------------------
    @admin.display(description="Ref", ordering="ref")
    def reference(self, obj: Incident) -> str:
        return format_html('<span style="white-space:nowrap">{}</span>', obj.ref)

    @admin.display(description="Severity", ordering="severity")
    def severity_badge(self, obj: Incident) -> str:
        return badge(obj.severity, SEVERITY_COLOURS.get(obj.severity, "#5b6f82"))

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Incident) -> str:
        return badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#5b6f82"))

    @admin.display(description="Team", ordering="service__team__name")
    def team(self, obj: Incident) -> str:
        return obj.service.team.name

    @admin.display(description="Age", ordering="declared_at")
    def age(self, obj: Incident) -> str:
        end = obj.resolved_at or obj.closed_at or timezone.now()
        return humanize_age((end - obj.declared_at).total_seconds())

    # --- forms --------------------------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": DeclareForm.Meta.fields})]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if services.can_correct_times(request.user):
            return self.readonly_fields
        return [*self.readonly_fields, *CORRECTABLE_TIMES]  # managers correct times (the service's rule)

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = DeclareForm if obj is None else IncidentChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        """One service per save: declare, or `incident_edit` (edit, roles and times, all or nothing). A refusal
        raises: ServiceErrorsMixin rolls the whole save back and shows the form again with the message."""
        data = form.cleaned_data
        if not change:
            incident = services.incident_declare(
                actor=request.user,
                title=data["title"],
                severity=data["severity"],
                service=data["service"],
                summary=data.get("summary", ""),
                started_at=data.get("started_at"),
                detected_at=data.get("detected_at"),
                is_practice=data.get("is_practice", False),
                commander=data.get("commander"),
                repeat_of=data.get("repeat_of"),
            )
        else:
            incident = services.incident_edit(
                incident=Incident.objects.get(pk=obj.pk),
                actor=request.user,
                title=data["title"],
                summary=data["summary"],
                severity=data["severity"],
                repeat_of=data.get("repeat_of") if "repeat_of" in form.changed_data else services.UNSET,
                commander=data.get("commander"),
                comms_lead=data.get("comms_lead"),
                times={name: data.get(name) for name in CORRECTABLE_TIMES if name in form.changed_data},
                reason="corrected in the admin",
            )
        # the admin goes on with `obj` (messages, redirect): make it the saved incident
        for field in Incident._meta.concrete_fields:
            setattr(obj, field.attname, getattr(incident, field.attname))
        obj._state.adding = False
        obj._state.db = incident._state.db

    def save_formset(self, request, form, formset, change):
        # the admin's change message reads these; nothing is saved through the formset itself
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is not StatusUpdate:
            return
        for inline_form in formset.forms:
            if inline_form.instance.pk or not inline_form.has_changed():
                continue
            data = inline_form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            # a refusal raises: the whole save rolls back and the form comes back with it (ServiceErrorsMixin)
            update = services.status_update_create(
                incident=form.instance,
                author=request.user,
                message=data.get("message", ""),
                audience=data.get("audience") or StatusUpdate.Audience.STAKEHOLDERS,
            )
            formset.new_objects.append(update)

    # --- transitions ----------------------------------------------------------------------------------------
    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path(
                "<int:pk>/transition/<str:name>/",
                self.admin_site.admin_view(self.transition_view),
                name="incidents_incident_transition",
            ),
        ]
        return custom + urls

    def transition_view(self, request, pk: int, name: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        incident = get_object_or_404(Incident, pk=pk)
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        try:
            if name == "cancel":
                duplicate_ref = request.POST.get("duplicate_of", "").strip()
                duplicate = Incident.objects.filter(ref__iexact=duplicate_ref).first() if duplicate_ref else None
                if duplicate_ref and duplicate is None:
                    raise ValidationError({"duplicate_of": [f"No incident {duplicate_ref}."]})
                services.incident_cancel(
                    incident=incident,
                    actor=request.user,
                    reason=request.POST.get("closure_reason", ""),
                    duplicate_of=duplicate,
                )
            elif name in TRANSITIONS:
                TRANSITIONS[name](incident=incident, actor=request.user)
            else:
                raise ValidationError({"transition": [f"Unknown transition {name!r}."]})
        except (DomainError, ValidationError) as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
        else:
            incident.refresh_from_db()
            self.message_user(request, f"{incident.ref} is {incident.get_status_display().lower()}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:incidents_incident_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["transitions"] = _available_transitions(obj) if obj else []
        context["closure_reasons"] = Incident.ClosureReason.choices
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _bulk(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for incident in queryset:
            try:
                service(incident=incident, actor=request.user)
                done += 1
            except DomainError as exc:
                refused.append(exc.message)
        if done:
            self.message_user(request, f"{done} incident(s) {verb}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Acknowledge selected incidents", permissions=["change"])
    def acknowledge_selected(self, request, queryset):
        self._bulk(request, queryset, services.incident_acknowledge, "acknowledged")

    @admin.action(description="Mark selected incidents mitigated", permissions=["change"])
    def mitigate_selected(self, request, queryset):
        self._bulk(request, queryset, services.incident_mitigate, "mitigated")

    @admin.action(description="Resolve selected incidents", permissions=["change"])
    def resolve_selected(self, request, queryset):
        self._bulk(request, queryset, services.incident_resolve, "resolved")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def _available_transitions(incident: Incident) -> list[tuple[str, str]]:
    status = Incident.Status
    options = {
        status.TRIGGERED: [("acknowledge", "Acknowledge"), ("mitigate", "Mitigated"), ("resolve", "Resolve")],
        status.ACKNOWLEDGED: [("mitigate", "Mitigated"), ("resolve", "Resolve")],
        status.MITIGATED: [("resolve", "Resolve")],
        status.RESOLVED: [("close", "Close"), ("reopen", "Reopen")],
    }
    return options.get(incident.status, [])


def _error_text(exc: Exception) -> str:
    """A refusal as an admin message: the fields' labels, never their internal names."""
    return refusal_text(exc, Incident)


@admin.register(Service)
class ServiceAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "team"]
    list_filter = ["team"]
    list_select_related = ["team"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["team"]


@admin.register(SeverityPolicy)
class SeverityPolicyAdmin(ServiceErrorsMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "severity",
        "name",
        "response_target",
        "update_cadence",
        "postmortem_required",
        "postmortem_deadline",
        "channel_required",
    ]
    readonly_fields = ["severity"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Alert ingestion: integrations (with routes), alerts, maintenance windows. Importing registers them.
# Response: runbooks, automation, chat settings, subscriptions, game days; extends the incident page.
from incidents import response_admin  # noqa: E402, F401
from incidents.alerting import admin as alerting_admin  # noqa: E402, F401
