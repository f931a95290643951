"""Routing: which severity and service an alert gets, by ordered label-matching routes (first match wins).

Reads only. The default mapping of `severity` label values is documented in docs/integrations.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.core.exceptions import ValidationError

from incidents.models import AlertRoute, Integration, Service

# The `severity` label (lower-cased) → incident severity; None: informational, no incident.
SEVERITY_LABEL_MAP: dict[str, str | None] = {
    **dict.fromkeys(("p0", "sev0", "sev-0", "emergency", "fatal"), "P0"),
    **dict.fromkeys(("p1", "sev1", "sev-1", "critical", "page", "alert"), "P1"),
    **dict.fromkeys(("p2", "sev2", "sev-2", "error", "high", "major"), "P2"),
    **dict.fromkeys(("p3", "sev3", "sev-3", "warning", "warn", "medium", "minor", "low", "ticket"), "P3"),
    **dict.fromkeys(("info", "informational", "notice", "debug", "none", "ok"), None),
}
# a missing or unknown severity label still opens an incident (nothing silently dropped), at the lowest level
DEFAULT_SEVERITY = "P3"


def severity_from_labels(labels: dict[str, str]) -> str | None:
    value = (labels.get("severity") or "").strip().lower()
    if not value:
        return DEFAULT_SEVERITY
    return SEVERITY_LABEL_MAP.get(value, DEFAULT_SEVERITY)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})$")


def parse_matcher(value: str) -> tuple[str, str]:
    """`"x"` → ("=", x); `"!=x"`, `"=~re"`, `"!~re"` → their operator and operand."""
    for operator in ("=~", "!~", "!="):
        if value.startswith(operator):
            return operator, value[len(operator) :]
    return "=", value


def validate_matchers(matchers: object) -> dict[str, str]:
    """Raise ValidationError naming `matchers` unless it is an object of label → matcher strings."""
    if not isinstance(matchers, dict):
        raise ValidationError({"matchers": ['Must be an object such as {"severity": "critical"}.']})
    for label, value in matchers.items():
        if not isinstance(value, str):
            raise ValidationError({"matchers": [f"{label}: the matcher must be a string."]})
        operator, operand = parse_matcher(value)
        if operator in ("=~", "!~"):
            try:
                _compiled(operand)
            except re.error as exc:
                raise ValidationError({"matchers": [f"{label}: invalid regular expression ({exc})."]}) from exc
    return matchers


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    """All matchers hold; a missing label is the empty string (as in Alertmanager)."""
    for label, value in matchers.items():
        actual = labels.get(label, "")
        operator, operand = parse_matcher(value)
        if operator == "=" and actual != operand:
            return False
        if operator == "!=" and actual == operand:
            return False
        if operator == "=~" and not _compiled(operand).match(actual):
            return False
        if operator == "!~" and _compiled(operand).match(actual):
            return False
    return True


@dataclass(frozen=True)
class RouteDecision:
    route_id: int | None
    service: Service
    severity: str | None  # None: no incident
    flap_delay: timedelta


def integration_routes(*, integration: Integration) -> list[AlertRoute]:
    """The routes in order, with their services; one query, reused for every alert of a request."""
    return list(AlertRoute.objects.filter(integration=integration).select_related("service").order_by("position", "id"))


def route_alert(*, integration: Integration, routes: Iterable[AlertRoute], labels: dict[str, str]) -> RouteDecision:
    """The first matching route decides; an unset severity falls back to the label mapping; no route: defaults."""
    for route in routes:
        if matches(route.matchers or {}, labels):
            if route.severity == AlertRoute.RouteSeverity.NONE:
                severity = None
            else:
                severity = route.severity or severity_from_labels(labels)
            return RouteDecision(
                route_id=route.pk,
                service=route.service or integration.service,
                severity=severity,
                flap_delay=route.flap_delay,
            )
    return RouteDecision(
        route_id=None, service=integration.service, severity=severity_from_labels(labels), flap_delay=timedelta(0)
    )
