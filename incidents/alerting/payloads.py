"""Parse what monitoring sends into `IncomingAlert`s. Pure functions: nothing is read or written here.

Every problem raises a Django `ValidationError` whose key names the offending field, for example
`alerts[0].startsAt`, so the sender learns exactly what to fix (HTTP 400, nothing stored).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError

# Alertmanager's "no end time": Go's zero time.
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
# RFC 3339 with any number of fraction digits (Go sends nanoseconds); Python keeps microseconds.
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:\d{2})$"
)
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_LABELS = 100
MAX_VALUE_LENGTH = 10_000
MAX_GROUP_KEY = 1000  # well under PostgreSQL's ~2,700-byte limit of a B-tree index entry


@dataclass
class IncomingAlert:
    """One alert in a request, normalised across senders."""

    fingerprint: str
    group_key: str
    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None  # None: "now" (the service fills it in)
    ends_at: datetime | None
    title: str
    raw: dict[str, Any] = field(default_factory=dict)
    action: str = ""  # PagerDuty: "acknowledge" (status stays as it is)


def _invalid(name: str, message: str) -> ValidationError:
    return ValidationError({name: [message]})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # NaN and Infinity: Python reads them, PostgreSQL's jsonb does not


def parse_json(body: bytes) -> Any:
    if b"\\u0000" in body:
        raise _invalid("body", "contains a NUL character (\\u0000), which cannot be stored")
    try:
        return json.loads(body, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise _invalid("body", f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _invalid("body", "nested too deeply") from exc


def parse_timestamp(value: Any, name: str) -> datetime:
    """An RFC 3339 timestamp with a zone (`Z` or an offset); nanoseconds are cut to microseconds."""
    if not isinstance(value, str):
        raise _invalid(name, "must be an RFC 3339 timestamp string")
    match = _RFC3339.match(value.strip())
    if not match:
        raise _invalid(name, f"{value!r} is not an RFC 3339 timestamp with a time zone (e.g. 2026-11-27T09:11:30Z)")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    tz = "+00:00" if match["tz"] in ("Z", "z") else match["tz"]
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}")
    except ValueError as exc:
        raise _invalid(name, f"{value!r} is not a valid date and time ({exc})") from exc


def _string_map(value: Any, name: str, *, required: bool = False) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _invalid(name, "must be an object of string values")
    if len(value) > MAX_LABELS:
        raise _invalid(name, f"at most {MAX_LABELS} entries")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(f"{name}.{key}", "must be a string")
        if len(item) > MAX_VALUE_LENGTH:
            raise _invalid(f"{name}.{key}", f"at most {MAX_VALUE_LENGTH} characters")
        out[str(key)] = item
    return out


def _string(value: Any, name: str, *, required: bool = True, max_length: int = 1024) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _invalid(name, "is required")
        return ""
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    if len(value) > max_length:
        raise _invalid(name, f"at most {max_length} characters")
    return value


def _object(data: Any, name: str = "body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _invalid(name, "must be a JSON object")
    return data


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A stable dedup key from labels, for senders that do not give one."""
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def short_group_key(group_key: str) -> str:
    """Group keys are indexed: one longer than MAX_GROUP_KEY is kept as its SHA-256 (the raw payload keeps it)."""
    if len(group_key) <= MAX_GROUP_KEY:
        return group_key
    return "sha256:" + hashlib.sha256(group_key.encode()).hexdigest()


def _title(labels: dict[str, str], annotations: dict[str, str]) -> str:
    return (annotations.get("summary") or annotations.get("title") or labels.get("alertname") or "Alert")[:300]


# --- Alertmanager webhook v4 ------------------------------------------------------------------------------------


def parse_alertmanager(data: Any) -> list[IncomingAlert]:
    """Alertmanager's webhook payload, version 4: one group, any number of alerts."""
    data = _object(data)
    version = data.get("version")
    if version != "4":
        raise _invalid("version", f"webhook payload version 4 expected, got {version!r}")
    group_key = short_group_key(_string(data.get("groupKey"), "groupKey", max_length=10_000))
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise _invalid("alerts", "must be a non-empty list")
    parsed = []
    for index, alert in enumerate(alerts):
        name = f"alerts[{index}]"
        alert = _object(alert, name)
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise _invalid(f"{name}.status", f"must be 'firing' or 'resolved', got {status!r}")
        labels = _string_map(alert.get("labels"), f"{name}.labels", required=True)
        annotations = _string_map(alert.get("annotations"), f"{name}.annotations")
        starts_at = parse_timestamp(alert.get("startsAt"), f"{name}.startsAt")
        ends_at = None
        if alert.get("endsAt") not in (None, ""):
            ends_at = parse_timestamp(alert["endsAt"], f"{name}.endsAt")
            if ends_at == GO_ZERO_TIME:
                ends_at = None
            elif ends_at < starts_at:
                raise _invalid(f"{name}.endsAt", "cannot be before startsAt")
        fingerprint = _string(alert.get("fingerprint"), f"{name}.fingerprint", required=False, max_length=255)
        parsed.append(
            IncomingAlert(
                fingerprint=fingerprint or labels_fingerprint(labels),
                group_key=group_key,
                status=status,
                labels=labels,
                annotations=annotations,
                starts_at=starts_at,
                ends_at=ends_at,
                title=_title(labels, annotations),
                raw=alert,
            )
        )
    return parsed


# --- PagerDuty Events API v2 ------------------------------------------------------------------------------------


def parse_pagerduty_v2(data: dict[str, Any]) -> IncomingAlert:
    """One Events API v2 event (`routing_key` already checked by the caller).

    trigger needs `payload.summary`, `payload.source` and `payload.severity`; acknowledge and resolve need
    `dedup_key`. A trigger without `dedup_key` gets a new one, returned to the sender as PagerDuty does."""
    action = data.get("event_action")
    if action not in PD_ACTIONS:
        raise _invalid("event_action", f"must be one of {', '.join(PD_ACTIONS)}")
    dedup_key = _string(data.get("dedup_key"), "dedup_key", required=action != "trigger", max_length=255)
    if action != "trigger":
        return IncomingAlert(
            fingerprint=dedup_key,
            group_key=dedup_key,
            status="resolved" if action == "resolve" else "firing",
            labels={},
            annotations={},
            starts_at=None,
            ends_at=None,
            title="",
            raw=data,
            action=action,
        )
    dedup_key = dedup_key or uuid.uuid4().hex
    payload = _object(data.get("payload"), "payload")
    summary = _string(payload.get("summary"), "payload.summary", max_length=1024)
    source = _string(payload.get("source"), "payload.source", max_length=255)
    severity = payload.get("severity")
    if severity not in PD_SEVERITIES:
        raise _invalid("payload.severity", f"must be one of {', '.join(PD_SEVERITIES)}")
    starts_at = None
    if payload.get("timestamp") not in (None, ""):
        starts_at = parse_timestamp(payload["timestamp"], "payload.timestamp")
    labels = {"severity": severity, "source": source}
    for name in ("component", "group", "class"):
        value = _string(payload.get(name), f"payload.{name}", required=False, max_length=255)
        if value:
            labels[name] = value
    details = payload.get("custom_details")
    annotations = {"summary": summary}
    if isinstance(details, dict):
        for key, value in details.items():
            annotations[str(key)] = value if isinstance(value, str) else json.dumps(value)
    elif details is not None:
        annotations["custom_details"] = details if isinstance(details, str) else json.dumps(details)
    return IncomingAlert(
        fingerprint=dedup_key,
        group_key=dedup_key,
        status="firing",
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=None,
        title=summary[:300],
        raw=data,
        action=action,
    )


# --- generic JSON -----------------------------------------------------------------------------------------------


def parse_generic(data: Any) -> IncomingAlert:
    """Firebreak's own small format (docs/integrations.md):

    {"title": "...", "status": "firing"|"resolved", "dedup_key": "...", "group_key": "...",
     "severity": "critical", "labels": {...}, "annotations": {...}, "description": "...",
     "starts_at": "2026-11-27T09:11:30Z", "ends_at": "..."}

    Only `title` is required (and `dedup_key` to resolve); the rest has defaults."""
    data = _object(data)
    status = data.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise _invalid("status", f"must be 'firing' or 'resolved', got {status!r}")
    labels = _string_map(data.get("labels"), "labels")
    annotations = _string_map(data.get("annotations"), "annotations")
    title = _string(data.get("title"), "title", required=status == "firing", max_length=300)
    if title:
        annotations.setdefault("summary", title)
    description = _string(data.get("description"), "description", required=False, max_length=MAX_VALUE_LENGTH)
    if description:
        annotations.setdefault("description", description)
    severity = _string(data.get("severity"), "severity", required=False, max_length=32)
    if severity:
        labels["severity"] = severity
    dedup_key = _string(data.get("dedup_key"), "dedup_key", required=status == "resolved", max_length=255)
    dedup_key = dedup_key or labels_fingerprint({**labels, "__title__": title})
    group_key = short_group_key(_string(data.get("group_key"), "group_key", required=False, max_length=10_000))
    group_key = group_key or dedup_key
    starts_at = parse_timestamp(data["starts_at"], "starts_at") if data.get("starts_at") else None
    ends_at = parse_timestamp(data["ends_at"], "ends_at") if data.get("ends_at") else None
    if starts_at and ends_at and ends_at < starts_at:
        raise _invalid("ends_at", "cannot be before starts_at")
    return IncomingAlert(
        fingerprint=dedup_key,
        group_key=group_key,
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        title=title or _title(labels, annotations),
        raw=data,
    )
