"""Errors every layer's services raise. The API turns them into 400 (ValidationError) and 409 (DomainError)."""

from __future__ import annotations


class DomainError(Exception):
    """A refused business action: the request was well-formed but the state does not allow it."""

    def __init__(self, message: str, *, code: str = "conflict", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def integrity_message(exc: Exception) -> str:
    """A message for a database constraint violation that names the rule, never the database's own text: the
    constraint's `violation_error_message` when it has one of its own, else a plain sentence."""
    from django.apps import apps
    from django.db.models import BaseConstraint

    name = getattr(getattr(getattr(exc, "__cause__", None), "diag", None), "constraint_name", None)
    if name:
        for model in apps.get_models():
            for constraint in model._meta.constraints:
                if constraint.name == name and constraint.violation_error_message not in (
                    None,
                    BaseConstraint.default_violation_error_message,
                ):
                    return str(constraint.violation_error_message)
    return "This change conflicts with data recorded in the meantime; reload and try again."
