"""Audit trail of admin changes: Django's own LogEntry, with old → new values.

Django's admin already writes a `LogEntry` (who, when, which object, added/changed/deleted) for every save
through the admin; its change message names the changed fields only. `AuditedAdminMixin` adds the old and
new value of each changed field, for the main form and for every inline, in the same JSON message under a
`values` key (Django's own rendering ignores extra keys, so the admin history page keeps working).
Secrets are never written: a field whose name says key, secret, token or password is shown as "(changed)".

`audit_action` records what an admin action did to each selected object (for example a key regenerated).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Model, QuerySet
from django.forms import BaseForm

SECRET_HINTS = ("key", "secret", "token", "password")
MAX_VALUE_LENGTH = 200


def _is_secret(name: str) -> bool:
    return any(hint in name.lower() for hint in SECRET_HINTS)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def _many(value: Any) -> set[str] | None:
    if isinstance(value, QuerySet | list | tuple | set):
        return {str(item) for item in value}
    return None


def _resolve_initial(form: BaseForm, name: str) -> Any:
    """The value the form started with, as a display value (a primary key becomes its object)."""
    initial = form.get_initial_for_field(form.fields[name], name)
    field = form.fields[name]
    queryset = getattr(field, "queryset", None)
    if queryset is None or initial in (None, ""):
        return initial
    if isinstance(initial, list | tuple | set | QuerySet):
        keys = [getattr(item, "pk", item) for item in initial]
        return list(queryset.model._default_manager.filter(pk__in=keys))
    if isinstance(initial, Model):
        return initial
    return queryset.model._default_manager.filter(pk=initial).first()


def form_changes(form: BaseForm) -> dict[str, Any]:
    """{field: [old, new]} for each changed field; many-to-many fields as {"added": [...], "removed": [...]}."""
    values: dict[str, Any] = {}
    for name in form.changed_data:
        if name not in form.fields:
            continue
        if _is_secret(name):
            values[name] = "(changed)"
            continue
        old = _resolve_initial(form, name)
        new = form.cleaned_data.get(name)
        old_many, new_many = _many(old), _many(new)
        if old_many is not None or new_many is not None:
            old_many, new_many = old_many or set(), new_many or set()
            values[name] = {"added": sorted(new_many - old_many), "removed": sorted(old_many - new_many)}
        else:
            values[name] = [_text(old), _text(new)]
    return values


class AuditedAdminMixin:
    """Put first in the bases of a ModelAdmin: its LogEntry change messages carry old → new values."""

    def construct_change_message(self, request, form, formsets, add=False):
        message = super().construct_change_message(request, form, formsets, add)
        if add:
            return message
        for entry in message:
            if "changed" in entry and "object" not in entry["changed"]:
                entry["changed"]["values"] = form_changes(form)
        for formset in formsets or []:
            forms_by_instance = {id(f.instance): f for f in formset.forms}
            for changed_object, _fields in formset.changed_objects:
                inline_form = forms_by_instance.get(id(changed_object))
                if inline_form is None:
                    continue
                for entry in message:
                    changed = entry.get("changed", {})
                    if changed.get("object") == str(changed_object) and "values" not in changed:
                        changed["values"] = form_changes(inline_form)
                        break
        return message


def audit_action(*, request, objects, description: str) -> None:
    """One LogEntry per object for an admin action that changed it (description: what was done)."""
    objects = list(objects)
    if not objects:
        return
    message = json.dumps([{"changed": {"fields": [], "action": description}}])
    LogEntry.objects.log_actions(
        user_id=request.user.pk, queryset=objects, action_flag=CHANGE, change_message=message, single_object=False
    )


def change_values(entry: LogEntry) -> list[str]:
    """Human lines 'field: old → new' from an entry written by AuditedAdminMixin or audit_action."""
    try:
        message = json.loads(entry.change_message or "[]")
    except ValueError:
        return []
    lines: list[str] = []
    for part in message if isinstance(message, list) else []:
        changed = part.get("changed") if isinstance(part, dict) else None
        if not changed:
            continue
        prefix = f"{changed['name']} {changed['object']}: " if "object" in changed else ""
        if "action" in changed:
            lines.append(prefix + changed["action"])
        for name, value in (changed.get("values") or {}).items():
            if isinstance(value, dict):
                added = ", ".join(value.get("added", [])) or "—"
                removed = ", ".join(value.get("removed", [])) or "—"
                lines.append(f"{prefix}{name}: +[{added}] −[{removed}]")
            elif isinstance(value, list):
                old, new = value
                lines.append(f"{prefix}{name}: {old if old is not None else '∅'} → {new if new is not None else '∅'}")
            else:
                lines.append(f"{prefix}{name}: {value}")
    return lines
