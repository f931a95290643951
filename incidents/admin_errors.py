"""Refusals from services in admin add/change forms: the form comes back with the message, the input kept.

A service called from `save_model` (or `save_related`) may refuse with a ValidationError naming the field or a
DomainError. Django's change view runs the save inside one transaction, so the refusal rolls all of it back;
`ServiceErrorsMixin` then shows the same POST again as an invalid form: each message on its field (or at the
top when the field is not on the form), and nothing saved, nothing reported as changed. Without it the
exception escaped as a 500 and the form was lost.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.utils.text import capfirst

from oncall.errors import DomainError

REFUSAL_ATTRIBUTE = "_firebreak_service_refusal"


def refusal_messages(exc: Exception) -> dict[str | None, list[str]]:
    """{field name or None: [messages]} of a service's ValidationError or DomainError."""
    if isinstance(exc, DomainError):
        return {exc.field: [exc.message]}
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return {(None if field == "__all__" else field): messages for field, messages in exc.message_dict.items()}
    return {None: list(getattr(exc, "messages", [str(exc)]))}


def _label(model, name: str) -> str:
    try:
        return str(capfirst(model._meta.get_field(name).verbose_name))
    except FieldDoesNotExist:
        return capfirst(name.replace("_", " "))


def refusal_text(exc: Exception, model=None) -> str:
    """One line for an admin message: each field's label and its messages."""
    parts = []
    for field, messages in refusal_messages(exc).items():
        text = " ".join(messages)
        parts.append(f"{_label(model, field)}: {text}" if field and model is not None else text)
    return "; ".join(parts)


class _RefusedFormMixin:
    """Adds a service's refusal to a bound form as validation errors, so the admin shows the form again."""

    refusal: Exception | None = None

    def clean(self):
        cleaned = super().clean()
        for field, messages in refusal_messages(self.refusal).items():
            if field in self.fields:
                self.add_error(field, messages)
            elif field:
                label = _label(self._meta.model, field)
                self.add_error(None, [f"{label}: {message}" for message in messages])
            else:
                self.add_error(None, messages)
        return cleaned


class ServiceErrorsMixin:
    """For ModelAdmins whose save calls a service (see the module docstring)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ValidationError, DomainError) as exc:
            if request.method != "POST" or getattr(request, REFUSAL_ATTRIBUTE, None) is not None:
                raise
            # the view's transaction has rolled back: show the same POST again, invalid this time
            setattr(request, REFUSAL_ATTRIBUTE, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, REFUSAL_ATTRIBUTE, None)
        if refusal is None:
            return form
        return type(form.__name__, (_RefusedFormMixin, form), {"refusal": refusal})
