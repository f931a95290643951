"""Postmortem and action-item admin. Every change goes through postmortems.services."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import models
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from oncall.errors import DomainError
from postmortems import selectors, services
from postmortems.models import (
    OPEN_ITEM_STATUSES,
    SECTIONS,
    ActionItem,
    ContributingFactor,
    Postmortem,
    PostmortemEvent,
    PostmortemReview,
)
from postmortems.rendering import render_markdown

STATUS_COLOURS = {
    "draft": "#5b6f82",
    "in_review": "#c99a00",
    "published": "#2e7d32",
    "withdrawn": "#8a8a8a",
    "open": "#5b6f82",
    "in_progress": "#e0580c",
    "done": "#2e7d32",
    "wont_do": "#8a8a8a",
}


def badge(text: str, colour: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;border-radius:4px;padding:1px 7px;font-weight:600;'
        'white-space:nowrap">{}</span>',
        colour,
        text,
    )


def _error_text(exc: Exception) -> str:
    """A refusal or a validation error as a message: field labels, never internal names."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(
            " ".join(errors) if field == NON_FIELD_ERRORS else f"{services.field_label(field)}: {' '.join(errors)}"
            for field, errors in exc.message_dict.items()
        )
    return " ".join(getattr(exc, "messages", [str(exc)]))


def warnings_html(warnings: list[dict]) -> str:
    if not warnings:
        return "No blameless-language warnings."
    return format_html(
        '<ul style="margin:0;padding-left:1.2em">{}</ul>',
        format_html_join(
            "",
            "<li><strong>{}</strong> “{}” in <code>{}</code> (line {}): {}</li>",
            ((w.get("rule"), w.get("phrase"), w.get("where"), w.get("line"), w.get("suggestion")) for w in warnings),
        ),
    )


# --- postmortems ------------------------------------------------------------------------------------------------


# a published postmortem changes only through an amendment, a withdrawn one not at all
FROZEN = (Postmortem.Status.PUBLISHED, Postmortem.Status.WITHDRAWN)


class ContributingFactorInline(admin.TabularInline):
    model = ContributingFactor
    extra = 1
    fields = ["category", "description", "position"]

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.status not in FROZEN and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return obj is not None and obj.status not in FROZEN and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.status not in FROZEN and super().has_delete_permission(request, obj)


# what the admin forms pass to the action-item services (the tracker URL is passed on its own: "" clears it);
# a field a form does not have is None, which the services read as "unchanged"
ITEM_FIELDS = ("title", "owner", "team", "priority", "kind", "due_on", "runbook", "game_day")


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 1
    fields = ["title", "owner", "team", "priority", "kind", "due_on", "tracker_url", "runbook", "status"]
    readonly_fields = ["status"]
    autocomplete_fields = ["owner", "team", "runbook"]
    can_delete = False
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "team", "runbook")

    def has_add_permission(self, request, obj=None):
        return obj is not None and super().has_add_permission(request, obj)


class ReviewInline(admin.TabularInline):
    model = PostmortemReview
    extra = 0
    fields = ["created_at", "round", "reviewer", "decision", "comment"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "reviews"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reviewer")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventInline(admin.TabularInline):
    model = PostmortemEvent
    fk_name = "postmortem"
    extra = 0
    fields = ["at", "kind", "actor", "message"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PostmortemForm(forms.ModelForm):
    class Meta:
        model = Postmortem
        fields = ["title", "incidents", "owner", "due_at", *SECTIONS]
        widgets = {name: forms.Textarea(attrs={"rows": 4, "cols": 100}) for name in SECTIONS}


WORKFLOW = {
    "submit": ("Submit for review", {"draft"}),
    "approve": ("Approve", {"in_review"}),
    "request_changes": ("Request changes", {"in_review"}),
    "publish": ("Publish", {"in_review"}),
    "amend": ("Start an amendment", {"published"}),
}


@admin.register(Postmortem)
class PostmortemAdmin(admin.ModelAdmin):
    form = PostmortemForm
    list_display = ["ref_link", "shown_title", "status_badge", "owner", "due_at", "incident_refs", "warning_count"]
    list_display_links = ["ref_link", "shown_title"]
    list_filter = ["status"]
    list_select_related = ["owner"]
    search_fields = ["title", "incidents__ref"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    autocomplete_fields = ["owner", "incidents"]
    change_form_template = "admin/postmortems/postmortem/change_form.html"
    inlines = [ContributingFactorInline, ActionItemInline, ReviewInline, EventInline]

    # --- list columns ----------------------------------------------------------------------------------------
    @admin.display(description="Ref", ordering="pk")
    def ref_link(self, obj: Postmortem) -> str:
        return obj.ref

    @admin.display(description="Title", ordering="title")
    def shown_title(self, obj: Postmortem) -> str:
        # readers see the published title while an amendment is under way (selectors.with_title_for)
        return getattr(obj, "shown_title", None) or obj.title

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Postmortem) -> str:
        return badge(obj.get_status_display(), STATUS_COLOURS[obj.status])

    @admin.display(description="You are reading")
    def revision_note(self, obj: Postmortem) -> str:
        revision = obj.shown_revision
        return format_html(
            "revision {}, published {}. An amendment is under way; its text is shown once it is published.",
            revision.number,
            services.format_time(revision.published_at),
        )

    @admin.display(description="Incidents")
    def revision_incidents(self, obj: Postmortem) -> str:
        return ", ".join(obj.shown_revision.content.get("incidents") or []) or "—"

    @admin.display(description="Contributing factors")
    def revision_factors(self, obj: Postmortem) -> str:
        labels = dict(ContributingFactor.Category.choices)
        factors = obj.shown_revision.content.get("contributing_factors") or []
        if not factors:
            return "—"
        return format_html(
            '<ul style="margin:0;padding-left:1.2em">{}</ul>',
            format_html_join(
                "",
                "<li><strong>{}</strong>: {}</li>",
                ((labels.get(f.get("category"), f.get("category")), f.get("description")) for f in factors),
            ),
        )

    @admin.display(description="Incidents")
    def incident_refs(self, obj: Postmortem) -> str:
        return ", ".join(incident.ref for incident in obj.incidents.all())

    @admin.display(description="Warnings")
    def warning_count(self, obj: Postmortem) -> int:
        return len(obj.lint_warnings or [])

    @admin.display(description="Blameless-language warnings")
    def lint_warnings_display(self, obj: Postmortem) -> str:
        return warnings_html(obj.lint_warnings or [])

    @admin.display(description="Preview")
    def preview(self, obj: Postmortem) -> str:
        parts = []
        for name, label in SECTIONS.items():
            text = getattr(obj, name)
            if text.strip():
                parts.append(format_html("<h3>{}</h3>{}", label, mark_safe(render_markdown(text))))  # noqa: S308 - nh3-sanitised
        return mark_safe('<div class="postmortem-preview">' + "".join(parts) + "</div>")  # noqa: S308 - built from escaped parts

    # --- queryset, permissions -------------------------------------------------------------------------------
    def get_queryset(self, request):
        queryset = selectors.with_title_for(super().get_queryset(request).prefetch_related("incidents"), request.user)
        return queryset.filter(pk__in=selectors.postmortems_visible_to(request.user).values("pk"))

    def get_object(self, request, object_id, from_field=None):
        """During an amendment, people not involved in it read the last published revision (selectors)."""
        obj = super().get_object(request, object_id, from_field)
        revision = None
        if obj is not None:
            revision = selectors.postmortem_revision_for_reader(user=request.user, postmortem=obj)
        if revision is not None:
            sections = revision.content.get("sections") or {}
            obj.title = revision.content.get("title") or obj.title
            for name in SECTIONS:
                setattr(obj, name, sections.get(name, ""))
            obj.lint_warnings = selectors.revision_lint_warnings(revision)
            obj.shown_revision = revision  # never saved: readers cannot change a postmortem
        return obj

    def has_view_permission(self, request, obj=None):
        return request.user.is_authenticated and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_change_permission(request)
        return selectors.user_can_edit_postmortem(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        readonly = ["status", "published_at", "lint_warnings_display", "preview"]
        readonly += ["revision_note", "revision_incidents", "revision_factors"]
        if obj is not None and obj.status in FROZEN:
            readonly += ["title", "incidents", "owner", "due_at", *SECTIONS]
        return readonly if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["title", "incidents", "owner", "due_at"]})]
        if getattr(obj, "shown_revision", None) is not None:
            return [
                (None, {"fields": ["title", "revision_note", "revision_incidents", ("owner", "due_at")]}),
                ("Blameless-language check (advisory, never blocking)", {"fields": ["lint_warnings_display"]}),
                ("Sections (Markdown)", {"fields": list(SECTIONS)}),
                ("Contributing factors", {"fields": ["revision_factors"]}),
                ("Rendered", {"fields": ["preview"], "classes": ["collapse"]}),
            ]
        return [
            (None, {"fields": ["title", ("status", "published_at"), "incidents", ("owner", "due_at")]}),
            ("Blameless-language check (advisory, never blocking)", {"fields": ["lint_warnings_display"]}),
            ("Sections (Markdown)", {"fields": list(SECTIONS)}),
            ("Rendered", {"fields": ["preview"], "classes": ["collapse"]}),
        ]

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        if getattr(obj, "shown_revision", None) is not None:  # the published factors are shown above
            return [inline for inline in self.inlines if inline is not ContributingFactorInline]
        return self.inlines

    # --- saving through services -----------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            postmortem = services.postmortem_create(
                title=data["title"],
                actor=request.user,
                incidents=list(data.get("incidents") or []),
                owner=data.get("owner"),
                due_at=data.get("due_at"),
            )
        else:
            postmortem = Postmortem.objects.get(pk=obj.pk)
            if postmortem.status not in FROZEN:
                try:
                    fields = {name: data[name] for name in ("title", *SECTIONS) if name in form.changed_data}
                    postmortem = services.postmortem_update(
                        postmortem=postmortem,
                        actor=request.user,
                        owner=data.get("owner") if "owner" in form.changed_data else None,
                        due_at=data.get("due_at") if "due_at" in form.changed_data else None,
                        **fields,
                    )
                    for incident in data.get("incidents") or []:
                        services.postmortem_link_incident(postmortem=postmortem, incident=incident, actor=request.user)
                except (DomainError, ValidationError) as exc:
                    self.message_user(request, _error_text(exc), messages.ERROR)
        for field in Postmortem._meta.concrete_fields:
            setattr(obj, field.attname, getattr(postmortem, field.attname))
        obj._state.adding = False
        obj._state.db = postmortem._state.db

    def save_related(self, request, form, formsets, change):
        # incidents are linked by save_model; inlines by save_formset
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        postmortem = form.instance
        for inline_form in formset.forms:
            data = getattr(inline_form, "cleaned_data", None)
            if not data or (not inline_form.has_changed() and not data.get("DELETE")):
                continue
            try:
                if formset.model is ContributingFactor:
                    self._save_factor(request, postmortem, inline_form, data, formset)
                elif formset.model is ActionItem:
                    self._save_item(request, postmortem, inline_form, data, formset)
            except (DomainError, ValidationError) as exc:
                self.message_user(request, _error_text(exc), messages.ERROR)

    def _save_factor(self, request, postmortem, inline_form, data, formset) -> None:
        instance = inline_form.instance
        if data.get("DELETE"):
            if instance.pk:
                services.contributing_factor_delete(factor=instance, actor=request.user)
            return
        factor = services.contributing_factor_save(
            postmortem=postmortem,
            actor=request.user,
            category=data["category"],
            description=data["description"],
            factor=instance if instance.pk else None,
            position=data.get("position"),
        )
        if instance.pk:
            formset.changed_objects.append((factor, inline_form.changed_data))
        else:
            formset.new_objects.append(factor)

    def _save_item(self, request, postmortem, inline_form, data, formset) -> None:
        instance = inline_form.instance
        fields = {name: data.get(name) for name in ITEM_FIELDS}
        if instance.pk:
            item = services.action_item_update(
                item=instance, actor=request.user, tracker_url=data.get("tracker_url") or "", **fields
            )
            formset.changed_objects.append((item, inline_form.changed_data))
        else:
            item = services.action_item_create(
                postmortem=postmortem, actor=request.user, tracker_url=data.get("tracker_url") or "", **fields
            )
            formset.new_objects.append(item)

    # --- workflow buttons ------------------------------------------------------------------------------------
    def get_urls(self):
        custom = [
            path(
                "<int:pk>/workflow/<str:name>/",
                self.admin_site.admin_view(self.workflow_view),
                name="postmortems_postmortem_workflow",
            ),
        ]
        return custom + super().get_urls()

    def workflow_view(self, request, pk: int, name: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        postmortem = get_object_or_404(Postmortem, pk=pk)
        comment = request.POST.get("comment", "")
        is_review = name in ("approve", "request_changes")
        if not is_review and not self.has_change_permission(request, postmortem):
            raise PermissionDenied
        try:
            if name == "submit":
                services.postmortem_submit(postmortem=postmortem, actor=request.user)
            elif name == "approve":
                services.postmortem_approve(postmortem=postmortem, reviewer=request.user, comment=comment)
            elif name == "request_changes":
                services.postmortem_request_changes(postmortem=postmortem, reviewer=request.user, comment=comment)
            elif name == "publish":
                services.postmortem_publish(postmortem=postmortem, actor=request.user)
            elif name == "amend":
                services.postmortem_amend(postmortem=postmortem, actor=request.user, reason=comment)
            else:
                raise ValidationError({"workflow": [f"Unknown step {name!r}."]})
        except (DomainError, ValidationError) as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
        else:
            postmortem.refresh_from_db()
            self.message_user(
                request,
                f"{postmortem.ref}: {WORKFLOW[name][0].lower()} done ({postmortem.get_status_display()}).",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:postmortems_postmortem_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["workflow"] = (
            [(name, label) for name, (label, states) in WORKFLOW.items() if obj.status in states] if obj else []
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- action items ---------------------------------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("this_week", "Due this week")]

    def queryset(self, request, queryset):
        today = selectors.org_today()
        if self.value() == "overdue":
            return queryset.filter(status__in=OPEN_ITEM_STATUSES, due_on__lt=today)
        if self.value() == "this_week":
            return queryset.filter(
                status__in=OPEN_ITEM_STATUSES, due_on__gte=today, due_on__lte=today + timedelta(days=7)
            )
        return queryset


class MineFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return [("1", "My action items")]

    def queryset(self, request, queryset):
        return queryset.filter(owner=request.user) if self.value() == "1" else queryset


class ActionItemForm(forms.ModelForm):
    class Meta:
        model = ActionItem
        fields = [
            *("postmortem", "title", "owner", "team", "priority", "kind", "due_on", "tracker_url"),
            *("runbook", "game_day"),
        ]


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    form = ActionItemForm
    list_display = ["title", "postmortem_ref", "owner", "team", "priority", "kind", "due_on", "status_badge", "overdue"]
    list_filter = [
        "status",
        "priority",
        OverdueFilter,
        MineFilter,
        "kind",
        "team",
        ("owner", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["owner", "team", "postmortem"]
    search_fields = ["title", "tracker_url"]
    ordering = ["due_on", "id"]
    show_full_result_count = False
    autocomplete_fields = ["postmortem", "owner", "team", "runbook", "game_day"]
    readonly_fields = ["status", "completed_at", "wont_do_reason"]
    actions = ["mark_in_progress", "mark_done"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Postmortem", ordering="postmortem_id")
    def postmortem_ref(self, obj: ActionItem) -> str:
        return obj.postmortem.ref if obj.postmortem_id else "—"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ActionItem) -> str:
        return badge(obj.get_status_display(), STATUS_COLOURS[obj.status])

    @admin.display(description="Overdue", boolean=True)
    def overdue(self, obj: ActionItem) -> bool:
        return bool(obj.is_open and obj.due_on and obj.due_on < selectors.org_today())

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_change_permission(request)
        return selectors.user_can_edit_action_item(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data.get(name) for name in ITEM_FIELDS}
        if change:
            item = services.action_item_update(
                item=ActionItem.objects.get(pk=obj.pk),
                actor=request.user,
                tracker_url=data.get("tracker_url") or "",
                **fields,
            )
        else:
            item = services.action_item_create(
                postmortem=data.get("postmortem"),
                actor=request.user,
                tracker_url=data.get("tracker_url") or "",
                **fields,
            )
        for field in ActionItem._meta.concrete_fields:
            setattr(obj, field.attname, getattr(item, field.attname))
        obj._state.adding = False
        obj._state.db = item._state.db

    def _set_status(self, request, queryset, status: str) -> None:
        done = refused = 0
        for item in queryset:
            if not selectors.user_can_edit_action_item(request.user, item):
                refused += 1
                continue
            services.action_item_set_status(item=item, actor=request.user, status=status)
            done += 1
        if done:
            self.message_user(request, f"{done} action item(s) updated.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} item(s) belong to someone else; not changed.", messages.WARNING)

    @admin.action(description="Mark selected in progress", permissions=["change"])
    def mark_in_progress(self, request, queryset):
        self._set_status(request, queryset, ActionItem.Status.IN_PROGRESS)

    @admin.action(description="Mark selected done", permissions=["change"])
    def mark_done(self, request, queryset):
        self._set_status(request, queryset, ActionItem.Status.DONE)
