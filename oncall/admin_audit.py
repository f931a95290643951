"""The audit trail in the admin: a read-only list of LogEntry rows, and audited User and Group admins."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from oncall.audit import AuditedAdminMixin, change_values
from oncall.roles import MANAGERS, RESPONDERS


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """Who changed what, when: every add, change and delete made through the admin. Read only."""

    list_display = ["action_time", "user", "action", "content_type", "object_repr", "changes"]
    list_filter = [
        "action_flag",
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "action_time",
    ]
    list_select_related = ["user", "content_type"]
    search_fields = ["object_repr", "object_id", "user__username", "change_message"]
    date_hierarchy = "action_time"
    ordering = ["-action_time", "-id"]
    show_full_result_count = False
    fields = ["action_time", "user", "action", "content_type", "object_id", "object_repr", "changes"]
    readonly_fields = fields

    @admin.display(description="action", ordering="action_flag")
    def action(self, obj: LogEntry) -> str:
        return {1: "added", 2: "changed", 3: "deleted"}.get(obj.action_flag, str(obj.action_flag))

    @admin.display(description="changes")
    def changes(self, obj: LogEntry) -> str:
        lines = change_values(obj) or [obj.get_change_message()]
        return format_html(
            "<ul style='margin:0;padding-left:1em'>{}</ul>",
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    def has_view_permission(self, request, obj=None):
        # Responders pick people in autocomplete fields (an incident's commander, an action item's owner), which
        # asks this admin for view permission; they get the name search, not the user pages.
        if request.path == reverse("admin:autocomplete") and obj is None:
            user = request.user
            if user.is_active and user.is_staff and user.groups.filter(name__in=[MANAGERS, RESPONDERS]).exists():
                return True
        return super().has_view_permission(request, obj)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass
