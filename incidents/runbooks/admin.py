"""Runbook admin: versions (read-only), a diff between two versions, a sanitised preview, the stale flag."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from incidents.admin_errors import ServiceErrorsMixin
from incidents.models import Runbook, RunbookVersion
from incidents.runbooks import rendering, selectors, services


class RunbookForm(forms.ModelForm):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 20, "cols": 100}), help_text="Markdown")
    change_note = forms.CharField(max_length=300, required=False, help_text="What changed and why")

    class Meta:
        model = Runbook
        fields = ["service", "title", "slug", "alert_name", "source_url"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        if self.instance.pk and self.instance.current_version_id:
            self.fields["body"].initial = self.instance.current_version.body


class RunbookVersionInline(admin.TabularInline):
    model = RunbookVersion
    extra = 0
    fields = ["number", "created_at", "author", "change_note", "diff"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-number"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    @admin.display(description="Diff")
    def diff(self, obj: RunbookVersion) -> str:
        if obj.number <= 1:
            return "—"
        url = reverse("admin:incidents_runbook_diff", args=[obj.runbook_id])
        return format_html(
            '<a href="{}?a={}&amp;b={}">v{} → v{}</a>', url, obj.number - 1, obj.number, obj.number - 1, obj.number
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Runbook)
class RunbookAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = RunbookForm
    list_display = ["title", "service", "alert_name", "version", "last_edited_at", "reviewed_at", "stale"]
    list_filter = ["service__team", "service"]
    search_fields = ["title", "alert_name", "slug"]
    autocomplete_fields = ["service"]
    ordering = ["service__name", "title"]
    show_full_result_count = False
    inlines = [RunbookVersionInline]
    actions = ["mark_reviewed"]
    readonly_fields = ["preview", "reviewed_at", "reviewed_by"]

    def get_queryset(self, request):
        return selectors.runbooks_with_staleness()

    def get_fieldsets(self, request, obj=None):
        main = ["service", "title", "slug", "alert_name", "source_url", "body", "change_note"]
        if obj is None:
            return [(None, {"fields": main})]
        return [(None, {"fields": main}), ("Current version", {"fields": ["preview", "reviewed_at", "reviewed_by"]})]

    @admin.display(description="Version", ordering="current_version__number")
    def version(self, obj: Runbook) -> str:
        return f"v{obj.current_version.number}" if obj.current_version else "—"

    @admin.display(description="Last edited", ordering="last_edited_at")
    def last_edited_at(self, obj: Runbook):
        return obj.last_edited_at

    @admin.display(description="Stale")
    def stale(self, obj: Runbook) -> str:
        reasons = []
        if getattr(obj, "stale_for_age", False):
            reasons.append("not reviewed for 90 days")
        if getattr(obj, "incident_since_edit", False):
            reasons.append("incident since last edit")
        if not reasons:
            return "—"
        return format_html(
            '<span style="background:#c99a00;color:#fff;border-radius:4px;padding:1px 7px" title="{}">stale</span>',
            "; ".join(reasons),
        )

    @admin.display(description="Preview")
    def preview(self, obj: Runbook) -> str:
        if not obj.current_version_id:
            return "—"
        return mark_safe(rendering.render_runbook(obj.current_version.body))  # noqa: S308 - sanitised by nh3

    def save_model(self, request, obj, form, change):
        # a refusal raises: the whole save (both calls of a change) rolls back and the form comes back with the
        # message on its field (ServiceErrorsMixin)
        data = form.cleaned_data
        if not change:
            runbook = services.runbook_create(
                service=data["service"],
                title=data["title"],
                slug=data.get("slug") or "",
                alert_name=data.get("alert_name", ""),
                source_url=data.get("source_url", ""),
                body=data["body"],
                change_note=data.get("change_note") or "First version",
                author=request.user,
            )
        else:
            runbook = services.runbook_update(
                runbook=obj,
                title=data["title"],
                alert_name=data.get("alert_name", ""),
                source_url=data.get("source_url", ""),
                service=data["service"],
            )
            services.runbook_edit(
                runbook=runbook, body=data["body"], change_note=data.get("change_note", ""), author=request.user
            )
        obj.pk = runbook.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # versions are written by services only; the admin's change message reads these
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Mark selected runbooks reviewed", permissions=["change"])
    def mark_reviewed(self, request, queryset):
        for runbook in queryset:
            services.runbook_mark_reviewed(runbook=runbook, actor=request.user)
        self.message_user(request, f"{queryset.count()} runbook(s) marked reviewed.", messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:pk>/diff/", self.admin_site.admin_view(self.diff_view), name="incidents_runbook_diff"),
            *super().get_urls(),
        ]

    def diff_view(self, request, pk: int):
        runbook = get_object_or_404(Runbook, pk=pk)
        if not self.has_view_permission(request, runbook):
            raise PermissionDenied
        versions = {v.number: v for v in runbook.versions.all()}
        try:
            a, b = int(request.GET.get("a", 0)), int(request.GET.get("b", 0))
        except ValueError:
            a = b = 0
        if a not in versions or b not in versions:
            numbers = sorted(versions)
            a, b = (numbers[-2], numbers[-1]) if len(numbers) > 1 else (numbers[0], numbers[0])
        table = rendering.diff_html(old=versions[a].body, new=versions[b].body, old_label=f"v{a}", new_label=f"v{b}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{runbook.title}: v{a} → v{b}",
            "runbook": runbook,
            "older": versions[a],
            "newer": versions[b],
            "table": mark_safe(table),  # noqa: S308 - difflib escapes the text
            "numbers": sorted(versions),
        }
        return TemplateResponse(request, "admin/incidents/runbook/diff.html", context)
