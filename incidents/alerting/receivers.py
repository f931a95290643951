"""Webhook receivers: plain Django views, CSRF-exempt, authenticated by the integration key only.

Each answers 2xx only after `alerts_receive` has committed the alerts (and any incident they opened).
Order of checks: body size (413), key (404), rate limit (429), payload (400), store (2xx).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.alerting import payloads, selectors, services
from incidents.alerting.payloads import IncomingAlert
from incidents.models import Integration

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class _Refused(Exception):  # noqa: N818 — a response, not an error
    def __init__(self, response: JsonResponse) -> None:
        self.response = response


def _error(status: int, code: str, detail: str, errors: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail, "errors": errors or {}}, status=status)


def _invalid(exc: ValidationError) -> JsonResponse:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"body": exc.messages}
    field, messages = next(iter(errors.items()))
    return _error(400, "invalid", f"{field}: {messages[0]}", errors)


def _read_body(request: HttpRequest) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _Refused(_error(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes."))
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise _Refused(_error(413, "too_large", f"The body is larger than {MAX_BODY_BYTES} bytes."))
    return body


def _rate_limited(integration: Integration) -> JsonResponse | None:
    retry_after = services.integration_count_request(integration=integration)
    if retry_after is None:
        return None
    response = _error(
        429,
        "rate_limited",
        f"More than {integration.rate_limit_per_minute} requests this minute for this integration.",
    )
    response["Retry-After"] = str(retry_after)
    return response


def _receive(request: HttpRequest, key: str, kind: str, parse: Callable[[Any], list[IncomingAlert]]) -> JsonResponse:
    try:
        body = _read_body(request)
    except _Refused as refused:
        return refused.response
    integration = selectors.integration_by_key(key=key, kind=kind)
    if integration is None:
        return _error(404, "not_found", "No integration of this kind has this key.")
    limited = _rate_limited(integration)
    if limited is not None:
        return limited
    try:
        alerts = parse(payloads.parse_json(body))
    except ValidationError as exc:
        return _invalid(exc)
    result = services.alerts_receive(integration=integration, alerts=alerts)
    return JsonResponse(
        {
            "status": "success",
            "alerts": len(result.alerts),
            "created": result.created,
            "deduplicated": result.deduplicated,
            "resolved": result.resolved,
            "incidents_opened": [incident.ref for incident in result.incidents_opened],
        }
    )


@csrf_exempt
@require_POST
def alertmanager_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """POST /hooks/alertmanager/<key>/: Alertmanager webhook payload version 4."""
    return _receive(request, key, Integration.Kind.ALERTMANAGER, payloads.parse_alertmanager)


@csrf_exempt
@require_POST
def generic_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """POST /hooks/generic/<key>/: Firebreak's small JSON format (docs/integrations.md)."""
    return _receive(request, key, Integration.Kind.GENERIC, lambda data: [payloads.parse_generic(data)])


def _pd_invalid(errors: list[str]) -> JsonResponse:
    # PagerDuty's own error shape, which its clients print
    return JsonResponse({"status": "invalid event", "message": "Event object is invalid", "errors": errors}, status=400)


@csrf_exempt
@require_POST
def pagerduty_v2_enqueue(request: HttpRequest) -> JsonResponse:
    """POST /hooks/pagerduty/v2/enqueue: PagerDuty Events API v2; the integration key is `routing_key`."""
    try:
        body = _read_body(request)
    except _Refused as refused:
        return refused.response
    try:
        data = payloads.parse_json(body)
        if not isinstance(data, dict):
            raise ValidationError({"body": ["must be a JSON object"]})
    except ValidationError as exc:
        return _pd_invalid(
            [f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
        )
    routing_key = data.get("routing_key")
    if not isinstance(routing_key, str) or not routing_key:
        return _pd_invalid(["routing_key: is required"])
    integration = selectors.integration_by_key(key=routing_key, kind=Integration.Kind.PAGERDUTY_V2)
    if integration is None:
        return JsonResponse(
            {"status": "invalid event", "message": "Unknown routing_key", "errors": ["routing_key: unknown"]},
            status=404,
        )
    limited = _rate_limited(integration)
    if limited is not None:
        return limited
    try:
        alert = payloads.parse_pagerduty_v2(data)
    except ValidationError as exc:
        return _pd_invalid(
            [f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages]
        )
    services.alerts_receive(integration=integration, alerts=[alert])
    return JsonResponse({"status": "success", "message": "Event processed", "dedup_key": alert.fingerprint}, status=202)
