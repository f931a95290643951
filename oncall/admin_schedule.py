"""Admin of rotations, shifts, overrides, swaps, unavailability, issues, handoffs and escalation policies.

Every write goes through a service; a refused change shows the rule's message and changes nothing."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from oncall import formatting, selectors, services
from oncall.audit import AuditedAdminMixin, audit_action
from oncall.errors import DomainError, integrity_message
from oncall.models import (
    CalendarFeed,
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Handoff,
    Holiday,
    HolidayCalendar,
    Override,
    Rotation,
    RotationMember,
    ScheduleIssue,
    Shift,
    Swap,
    Unavailability,
)
from oncall.selectors.timeline import rotation_timeline


class RefusalsAsMessages:
    """A refusal raised by a service after the form validated (DomainError, ValidationError, or a database
    constraint racing the checks) rolls the change back; the admin shows the same form again, the input kept,
    with the rule's message next to the field it concerns. `refusal_fields` maps a service's field names to
    the form's."""

    refusal_fields: dict[str, str] = {}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError, IntegrityError) as exc:
            if request.method != "POST" or getattr(request, "_oncall_refusal", None) is not None:
                raise
            request._oncall_refusal = _refusal_errors(exc)
            # the same POST again, inside a new transaction: the form now carries the refusal and saves nothing
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, **kwargs):
        return self.with_refusal(request, super().get_form(request, obj, **kwargs))

    def with_refusal(self, request, form_class):
        errors = getattr(request, "_oncall_refusal", None)
        if not errors:
            return form_class
        aliases = self.refusal_fields

        class Refused(form_class):
            def clean(self):
                data = super().clean()
                for field, message in errors:
                    field = aliases.get(field, field)
                    self.add_error(field if field in self.fields else None, message)
                return data

        return Refused

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())


def _take_fields(obj, saved) -> None:
    """The admin logs, messages and redirects with its own `obj`: give it what the service saved."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False


def _refusal_errors(exc: Exception) -> list[tuple[str | None, str]]:
    if isinstance(exc, DomainError):
        return [(exc.field, exc.message)]
    if isinstance(exc, IntegrityError):
        return [(None, integrity_message(exc))]
    if hasattr(exc, "error_dict"):
        return [(None if f == "__all__" else f, m) for f, msgs in exc.message_dict.items() for m in msgs]
    return [(None, m) for m in exc.messages]


class RotationMemberFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        now = timezone.now()
        for form in self.deleted_forms:
            member = form.instance
            if member.pk is None:
                continue
            frozen = services.frozen_shift_of(
                user_id=member.user_id,
                start=now,
                end=now + member.rotation.horizon,
                now=now,
                rotation_ids=[member.rotation_id],
            )
            if frozen is not None:
                when = formatting.period(frozen.period.lower, frozen.period.upper, frozen.rotation.timezone)
                raise ValidationError(
                    f"Rule 'a frozen shift keeps its holder': {formatting.person(member.user)} holds the current "
                    f"or next shift {when}; add an override for it before removing them."
                )


@admin.display(description="When", ordering="period")
def period_in_rotation_zone(obj) -> str:
    """A period in its rotation's zone, the zone named (not a range repr)."""
    return formatting.period(obj.period.lower, obj.period.upper, obj.rotation.timezone) if obj.period else "-"


@admin.display(description="When", ordering="period")
def period_in_person_zone(obj) -> str:
    return (
        formatting.period(obj.period.lower, obj.period.upper, formatting.person_zone(obj.user)) if obj.period else "-"
    )


class RotationMemberInline(admin.TabularInline):
    model = RotationMember
    formset = RotationMemberFormSet
    extra = 0
    autocomplete_fields = ["user"]
    ordering = ["position", "id"]


@admin.register(Rotation)
class RotationAdmin(AuditedAdminMixin, RefusalsAsMessages, admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "layer",
        "unit",
        "count",
        "timezone",
        "strategy",
        "is_active",
        "ical_link",
        "fairness_link",
    ]
    list_filter = ["layer", "unit", "strategy", "is_active", "team"]
    list_select_related = ["team"]
    search_fields = ["name", "team__name"]
    autocomplete_fields = ["team"]
    readonly_fields = ["ical_link", "plan_version"]
    inlines = [RotationMemberInline]
    actions = ["regenerate", "rotate_ical_token"]
    change_form_template = "admin/oncall/rotation/change_form.html"
    change_list_template = "admin/oncall/rotation/change_list.html"

    @admin.display(description="iCal feed")
    def ical_link(self, obj: Rotation) -> str:
        if not obj.pk:
            return "-"
        url = reverse("oncall-feeds:rotation", args=[obj.ical_token])
        return format_html('<a href="{}">{}</a>', url, "subscribe")

    @admin.display(description="Fairness")
    def fairness_link(self, obj: Rotation) -> str:
        return format_html('<a href="{}">report</a>', reverse("admin:oncall_rotation_fairness", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            obj.save()  # members are saved next (save_related), then the plan is regenerated

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.rotation_generate(rotation=form.instance)

    @admin.action(description="Re-plan the selected rotations now")
    def regenerate(self, request, queryset):
        for rotation in queryset:
            services.rotation_generate(rotation=rotation)
        self.message_user(request, f"{queryset.count()} rotation(s) re-planned.", messages.SUCCESS)

    @admin.action(description="Rotate the iCal token (old links stop working)")
    def rotate_ical_token(self, request, queryset):
        for rotation in queryset:
            services.rotation_rotate_ical_token(rotation=rotation)
        audit_action(request=request, objects=queryset, description="iCal token rotated")
        self.message_user(request, f"{queryset.count()} token(s) rotated.", messages.SUCCESS)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id and str(object_id).isdigit():
            extra_context["timeline"] = rotation_timeline(rotation_id=int(object_id), start=timezone.now(), days=28)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path("oncall-now/", self.admin_site.admin_view(self.oncall_now_view), name="oncall_oncall_now"),
            path(
                "<int:rotation_id>/fairness/",
                self.admin_site.admin_view(self.fairness_view),
                name="oncall_rotation_fairness",
            ),
            *super().get_urls(),
        ]

    def fairness_view(self, request, rotation_id: int):
        rotation = get_object_or_404(Rotation.objects.select_related("team"), pk=rotation_id)
        if not self.has_view_permission(request, rotation):
            raise PermissionDenied
        end = timezone.now()
        weeks = int(request.GET["weeks"]) if request.GET.get("weeks", "").isdigit() else 12
        report = selectors.fairness_report(rotation=rotation, start=end - timedelta(weeks=min(weeks, 56)), end=end)
        if request.GET.get("export") == "csv":
            response = HttpResponse(selectors.fairness_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="fairness-rotation-{rotation.pk}.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": f"Fairness: {rotation}",
            "rotation": rotation,
            "report": report,
            "weeks": weeks,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/oncall/fairness.html", context)

    def oncall_now_view(self, request):
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": "Who is on call now and next",
            "now": now,
            "entries": selectors.oncall_now(at=now),
            "issues": ScheduleIssue.objects.filter(resolved_at__isnull=True, period__endswith__gt=now)
            .select_related("rotation__team", "user")
            .order_by("period")[:20],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/oncall/oncall_now.html", context)


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ["rotation", "slot", period_in_rotation_zone, "user", "planned_user", "source", "sequence"]
    list_filter = ["source", "layer", "rotation__team"]
    list_select_related = ["rotation__team", "user", "planned_user"]
    search_fields = ["user__username", "rotation__name"]
    ordering = ["-period"]
    show_full_result_count = False
    readonly_fields = [*(f.name for f in Shift._meta.fields if f.name != "period"), period_in_rotation_zone]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PeriodForm(forms.ModelForm):
    start = forms.SplitDateTimeField(widget=AdminSplitDateTime)
    end = forms.SplitDateTimeField(widget=AdminSplitDateTime)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.period:
            self.initial["start"] = self.instance.period.lower
            self.initial["end"] = self.instance.period.upper

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "The end must be after the start.")
        return data


class OverrideForm(PeriodForm):
    class Meta:
        model = Override
        fields = ["rotation", "user", "start", "end", "reason"]

    def clean(self):
        data = super().clean()
        if not self.errors and data.get("start") and data["start"] < timezone.now() - timedelta(minutes=1):
            self.add_error("start", "Rule 'no overrides in the past': an override cannot start in the past.")
        return data


@admin.register(Override)
class OverrideAdmin(AuditedAdminMixin, RefusalsAsMessages, admin.ModelAdmin):
    form = OverrideForm
    list_display = ["rotation", "user", period_in_rotation_zone, "reason", "created_by", "cancelled_at"]
    list_filter = ["rotation__team", ("cancelled_at", admin.EmptyFieldListFilter)]
    list_select_related = ["rotation__team", "user", "created_by"]
    autocomplete_fields = ["rotation", "user"]
    search_fields = ["user__username", "reason"]
    ordering = ["-id"]
    actions = ["cancel"]

    def _is_manager(self, request) -> bool:
        return request.user.has_perm(selectors.schedule.MANAGE_PERMISSION)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and selectors.override_cancel_refusal(actor=request.user, override=obj) is None:
            return True  # a member cancels a shift they took for themselves
        return super().has_delete_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None and not self._is_manager(request):  # members take shifts for themselves
            return [f for f in fields if f != "user"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ["rotation", "user", "reason"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        try:
            form.instance = services.override_create(
                rotation=data["rotation"], user=data.get("user") or request.user, start=data["start"],
                end=data["end"], reason=data.get("reason", ""), created_by=request.user,
            )  # fmt: skip
        except PermissionDenied as exc:  # who may take which shift: shown on the form like any other refusal
            field = "user" if "user" in form.fields else "rotation"
            raise DomainError(str(exc), code="forbidden", field=field) from exc
        _take_fields(obj, form.instance)

    def delete_model(self, request, obj):
        refusal = selectors.override_cancel_refusal(actor=request.user, override=obj)
        if refusal is not None:
            raise PermissionDenied(refusal)
        services.override_cancel(override=obj)

    def delete_queryset(self, request, queryset):
        for override in queryset:
            self.delete_model(request, override)

    @admin.action(description="Cancel the selected overrides (the plan comes back)", permissions=["delete"])
    def cancel(self, request, queryset):
        for override in queryset:
            services.override_cancel(override=override)
        self.message_user(request, "Cancelled.", messages.SUCCESS)


class UnavailabilityForm(PeriodForm):
    class Meta:
        model = Unavailability
        fields = ["user", "kind", "start", "end", "note"]


@admin.register(Unavailability)
class UnavailabilityAdmin(RefusalsAsMessages, admin.ModelAdmin):
    form = UnavailabilityForm
    list_display = ["user", "kind", period_in_person_zone, "note"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    search_fields = ["user__username", "note"]
    ordering = ["-id"]

    def _is_manager(self, request) -> bool:
        return request.user.has_perm("oncall.change_unavailability")

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related("user__team_memberships__team")
        return queryset if self._is_manager(request) else queryset.filter(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        return [] if self._is_manager(request) else ["user"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.user_id == request.user.pk:
            return True
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        user = data.get("user") if self._is_manager(request) else request.user
        form.instance = services.unavailability_create(
            user=user, start=data["start"], end=data["end"], kind=data["kind"], note=data.get("note", "")
        )
        _take_fields(obj, form.instance)

    def delete_model(self, request, obj):
        services.unavailability_delete(unavailability=obj)

    def delete_queryset(self, request, queryset):
        for unavailability in queryset:
            services.unavailability_delete(unavailability=unavailability)


class SwapProposalForm(forms.ModelForm):
    """Propose a swap by picking two future shifts: one of yours and one of someone else's in the same rotation
    (the next 90 days; the counterparty and the slots follow from the shifts)."""

    WINDOW = timedelta(days=90)

    your_shift = forms.ModelChoiceField(queryset=Shift.objects.none(), label="Your shift")
    their_shift = forms.ModelChoiceField(
        queryset=Shift.objects.none(), label="Their shift", help_text="Asked of its holder, who accepts or declines."
    )

    class Meta:
        model = Swap
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        now = timezone.now()
        upcoming = (
            Shift.objects.filter(period__startswith__gt=now, period__startswith__lte=now + self.WINDOW)
            .exclude(user=None)
            .select_related("rotation__team", "user")
            .order_by("rotation__name", "period")
        )
        mine = upcoming.filter(user=user)
        self.fields["your_shift"].queryset = mine
        self.fields["their_shift"].queryset = upcoming.filter(rotation__in=mine.values("rotation").order_by()).exclude(
            user=user
        )
        for name in ("your_shift", "their_shift"):
            self.fields[name].label_from_instance = self._label

    @staticmethod
    def _label(shift: Shift) -> str:
        when = formatting.period(shift.period.lower, shift.period.upper, shift.rotation.timezone)
        return f"{shift.rotation} · {formatting.person(shift.user)} · {when}"

    def clean(self) -> dict:
        data = super().clean()
        yours, theirs = data.get("your_shift"), data.get("their_shift")
        if yours and theirs and yours.rotation_id != theirs.rotation_id:
            self.add_error("their_shift", "Pick a shift of the same rotation as yours.")
        return data


@admin.register(Swap)
class SwapAdmin(RefusalsAsMessages, admin.ModelAdmin):
    list_display = [
        "rotation",
        "requester",
        "requester_slot",
        "counterparty",
        "counterparty_slot",
        "status",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["rotation__team", "requester", "counterparty"]
    ordering = ["-id"]
    actions = ["accept", "decline"]
    refusal_fields = {"requester_slot": "your_shift", "counterparty_slot": "their_shift", "counterparty": "their_shift"}

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Swap._meta.fields] if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, **kwargs)
        user = request.user

        class ProposalForm(SwapProposalForm):
            def __init__(self, *args, **kw) -> None:
                super().__init__(*args, user=user, **kw)

        return self.with_refusal(request, ProposalForm)

    def save_model(self, request, obj, form, change):
        if change:
            return
        yours, theirs = form.cleaned_data["your_shift"], form.cleaned_data["their_shift"]
        swap = services.swap_request(  # a refusal (the plan changed since the form was shown) comes back on the form
            rotation=theirs.rotation,
            requester=request.user,
            counterparty=theirs.user,
            requester_slot=yours.slot,
            counterparty_slot=theirs.slot,
        )
        _take_fields(obj, swap)

    @admin.action(description="Accept the selected swaps (as their counterparty)")
    def accept(self, request, queryset):
        for swap in queryset:
            try:
                services.swap_accept(swap=swap, user=request.user)
            except DomainError as exc:
                self.message_user(request, f"Swap {swap.pk}: {exc.message}", messages.ERROR)

    @admin.action(description="Decline the selected swaps")
    def decline(self, request, queryset):
        for swap in queryset:
            try:
                services.swap_decline(swap=swap, user=request.user)
            except DomainError as exc:
                self.message_user(request, f"Swap {swap.pk}: {exc.message}", messages.ERROR)


@admin.register(ScheduleIssue)
class ScheduleIssueAdmin(admin.ModelAdmin):
    list_display = ["severity", "kind", "rotation", "user", period_in_rotation_zone, "message", "resolved_at"]
    list_filter = ["severity", "kind", ("resolved_at", admin.EmptyFieldListFilter), "rotation__team"]
    list_select_related = ["rotation__team", "user"]
    readonly_fields = [*(f.name for f in ScheduleIssue._meta.fields if f.name != "period"), period_in_rotation_zone]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ["rotation", "boundary_at", "outgoing", "incoming", "kind", "status", "lateness"]
    list_filter = ["kind", "status", "rotation__team"]
    list_select_related = ["rotation__team", "outgoing", "incoming"]
    readonly_fields = [f.name for f in Handoff._meta.fields]
    ordering = ["-boundary_at"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EscalationTargetInline(admin.TabularInline):
    model = EscalationTarget
    extra = 0
    autocomplete_fields = ["rotation", "user"]


@admin.register(EscalationStep)
class EscalationStepAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["policy", "position", "delay_minutes"]
    list_select_related = ["policy__team"]
    inlines = [EscalationTargetInline]
    autocomplete_fields = ["policy"]


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    show_change_link = True


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "team", "repeat"]
    list_select_related = ["team"]
    search_fields = ["name", "team__name"]
    autocomplete_fields = ["team"]
    inlines = [EscalationStepInline]
    readonly_fields = ["chain_now"]

    @admin.display(description="Who is paged now")
    def chain_now(self, obj: EscalationPolicy) -> str:
        if not obj.pk:
            return "-"
        policy = selectors.policies_with_steps().get(pk=obj.pk)
        chain = selectors.escalation_chain(policy=policy, at=timezone.now())
        return format_html(
            "<ol>{}</ol>",
            format_html(
                "".join(
                    format_html(
                        "<li>+{} min: {}</li>",
                        int(step.starts_after.total_seconds() // 60),
                        ", ".join(str(u) for u in step.users) or "nobody (skipped at once)",
                    )
                    for step in chain
                )
            ),
        )


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


@admin.register(HolidayCalendar)
class HolidayCalendarAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    inlines = [HolidayInline]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["user", "feed_link"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = ["feed_link"]

    @admin.display(description="iCal feed")
    def feed_link(self, obj: CalendarFeed) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">subscribe</a>', reverse("oncall-feeds:person", args=[obj.token]))
