from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from oncall import services
from oncall.audit import AuditedAdminMixin
from oncall.models import ContactMethod, Notification, Team, TeamMembership


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamMembershipInline]


class ContactMethodForm(forms.ModelForm):
    class Meta:
        model = ContactMethod
        fields = ["user", "kind", "address", "position"]

    def clean(self):
        cleaned = super().clean()
        kind, address = cleaned.get("kind"), cleaned.get("address")
        if kind and address:
            try:
                services.channels.validate_contact_address(kind=kind, address=address)
            except ValidationError as exc:
                self.add_error(None, exc)  # names `address`
        return cleaned


@admin.register(ContactMethod)
class ContactMethodAdmin(admin.ModelAdmin):
    form = ContactMethodForm
    list_display = ["user", "kind", "address", "position"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    search_fields = ["user__username", "address"]
    autocomplete_fields = ["user"]

    actions = ["send_test"]

    @admin.action(description="Send a test notification")
    def send_test(self, request, queryset):
        from django.utils import timezone

        for method in queryset.select_related("user"):
            services.notification_enqueue(
                dedupe_key=f"test:{method.pk}:{timezone.now().timestamp():.0f}",
                user=method.user,
                channel=method.kind,
                address=method.address,
                subject="Firebreak test notification",
                body=f"This is a test of your {method.get_kind_display()} contact method {method.address}.",
                payload={"kind": "test"},
            )
        self.message_user(request, f"{queryset.count()} test notification(s) queued; see Notifications.")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("oncall.view_notification"):  # managers see everyone's
            return queryset
        return queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if request.user.has_perm("oncall.view_notification"):
            return fields
        return [f for f in fields if f != "user"]  # responders manage their own contact methods only

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if request.user.has_perm("oncall.view_notification"):
            return form_class
        owner = request.user

        class OwnContactMethodForm(form_class):
            def __init__(self, *args, **kw) -> None:
                super().__init__(*args, **kw)
                self.instance.user = owner

            def _get_validation_exclusions(self):
                # `user` is not on the form but is set: validate the unique (user, kind, address) constraint
                # here, with its message, instead of letting the database refuse the row (a server error)
                exclude = super()._get_validation_exclusions()
                exclude.discard("user")
                return exclude

        return OwnContactMethodForm

    def save_model(self, request, obj, form, change):
        if not request.user.has_perm("oncall.view_notification"):
            obj.user = request.user  # responders manage their own contact methods only
        services.contact_method_save(method=obj)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "status", "channel", "user", "address", "subject", "attempts", "sent_at", "error"]
    list_filter = ["status", "channel"]
    list_select_related = ["user"]
    search_fields = ["dedupe_key", "subject", "address"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected failed notifications")
    def retry_failed(self, request, queryset):
        retried = 0
        for notification in queryset.filter(status=Notification.Status.FAILED):
            services.notification_retry(notification=notification)
            retried += 1
        self.message_user(request, f"{retried} notification(s) queued again.", messages.SUCCESS)


from oncall import admin_audit, admin_schedule  # noqa: E402, F401 - registers the schedule and audit admin classes
