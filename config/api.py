"""DRF wiring shared by every app: one error format, one pagination."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from oncall.errors import DomainError, integrity_message


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, list | tuple):
        out: list[str] = []
        for item in value:
            out.extend(_messages(item))
        return out
    if isinstance(value, dict):
        return [f"{key}: {msg}" for key, item in value.items() for msg in _messages(item)]
    return [str(value)]


def exception_handler(exc, context):
    """Errors as `{"code": ..., "detail": ..., "errors": {field: [messages]}}`.

    Django's ValidationError (raised by services) becomes a 400 naming the field; DomainError a 409.
    """
    if isinstance(exc, DomainError):
        errors = {exc.field: [exc.message]} if exc.field else {}
        body = {"code": exc.code, "detail": exc.message, "errors": errors}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DataError):
        # a value PostgreSQL cannot hold (a time zone offset beyond ±15:59, an inverted range, ...): bad input,
        # found by fuzzing (tests/fuzz); the failed statement ran outside or rolled back its transaction.
        # The database's own text never reaches the user (it quotes SQL).
        message = "A value is out of range."
        body = {"code": "invalid", "detail": message, "errors": {"non_field_errors": [message]}}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        # a constraint refused the change (a race past the services' checks): the rule, never the database text
        message = integrity_message(exc)
        return Response({"code": "conflict", "detail": message, "errors": {}}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(errors)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first_field, first_messages = next(iter(errors.items()), ("", [""]))
        prefix = "" if first_field == "non_field_errors" else f"{first_field}: "
        response.data = {"code": "invalid", "detail": prefix + first_messages[0], "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else "error",
            "detail": str(exc.detail),
            "errors": {},
        }
    return response


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination: constant time at any depth, no COUNT over millions of rows."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def decode_cursor(self, request):
        # DRF answers a malformed cursor with 404; it is bad input, so 400 naming the parameter
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError({self.cursor_query_param: [str(exc.detail)]}) from exc
