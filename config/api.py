"""DRF wiring shared by every app: one error format, one pagination, one rule for request bodies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, pagination, permissions, status
from rest_framework.request import Request
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


MAX_ID = 2**31 - 1


def query_time(request: Request, name: str) -> datetime | None:
    """Query parameter `name` as an aware datetime, None when absent or empty. Junk (`null`, a time without a
    zone, month 13) is a 400 naming the parameter: parsed by hand, it used to reach the view as None (a 500)."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:  # well formed, but not a date
        value = None
    if value is None or timezone.is_naive(value):
        raise exceptions.ValidationError({name: ["Give an ISO 8601 time with a time zone."]})
    return value


def query_id(request: Request, name: str) -> int | None:
    """Query parameter `name` as a row id, None when absent or empty; anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise exceptions.ValidationError({name: ["Give an id (a whole number)."]})
    return int(raw)


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


class StrictBodyMixin:
    # Mixed into every API view (a comment, not a docstring: drf-spectacular would show that on every operation).
    # An unsafe request (POST, PUT, PATCH, DELETE) has its body parsed before the view acts. DRF parses
    # `request.data` lazily, so an action that never read it acknowledged an incident or replaced a key whatever
    # the body held. Here, after authentication and permissions and before the handler: a body that does not
    # parse is a 400 (415 for a media type no parser reads); a body that is not an object (an array, a string,
    # `null`) is a 400; and an action declared with `takes_body=False` (`@action(..., takes_body=False)`, or the
    # class attribute of an APIView), like every DELETE, accepts only an empty body or `{}`. The schema follows
    # the same flag: such operations document no request body (config.schema.AutoSchema).

    takes_body = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if request.method in permissions.SAFE_METHODS or not hasattr(self, method):
            return  # safe, or no handler: DRF answers 405 next
        data = request.data  # raises ParseError / UnsupportedMediaType before anything is done
        if not isinstance(data, Mapping):
            raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object as the body."]})
        if data and not (self.takes_body and request.method != "DELETE"):
            raise exceptions.ValidationError(
                {"non_field_errors": ["This action takes no body: send none, or an empty JSON object {}."]}
            )
