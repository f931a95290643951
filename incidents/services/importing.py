"""History import: validate every row first, then write all of them in one transaction, or nothing."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from incidents.models import Incident, IncidentEvent, Service, Severity
from incidents.services.lifecycle import bump_ref_counter, check_time_order

COLUMNS = [
    "ref",
    "title",
    "severity",
    "service",
    "started_at",
    "detected_at",
    "declared_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
    "closed_at",
    "is_practice",
    "closure_reason",
]
OPTIONAL_COLUMNS = ["duplicate_of"]
REQUIRED_TIMES = ["started_at", "detected_at", "declared_at"]
OPTIONAL_TIMES = ["acknowledged_at", "mitigated_at", "resolved_at", "closed_at"]
OUR_REF = re.compile(r"^INC-(\d{4})-(\d+)$")
TRUE = {"true", "1", "yes", "y"}
FALSE = {"false", "0", "no", "n", ""}
BATCH = 2000
STAMP_EVENTS = [
    ("acknowledged_at", IncidentEvent.Kind.ACKNOWLEDGED),
    ("mitigated_at", IncidentEvent.Kind.MITIGATED),
    ("resolved_at", IncidentEvent.Kind.RESOLVED),
]


class ImportFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s); nothing was imported")
        self.errors = errors


@dataclass
class _Row:
    line: int
    values: dict = field(default_factory=dict)
    duplicate_ref: str = ""


def _parse_time(raw: str) -> datetime:
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp (e.g. 2026-03-01T09:30:00+01:00)") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add one (e.g. +00:00 or Z)")
    return value.astimezone(UTC)


def _validate(
    rows: Iterable[Mapping[str, str]], *, services: dict[str, Service], existing_refs: set[str]
) -> tuple[list[_Row], list[str]]:
    errors: list[str] = []
    parsed: list[_Row] = []
    seen_refs: dict[str, int] = {}
    now = timezone.now()
    for index, raw in enumerate(rows):
        line = index + 2  # line 1 is the header
        row = _Row(line=line)
        problems: list[tuple[str, str]] = []

        def get(column: str, raw=raw) -> str:
            return (raw.get(column) or "").strip()

        ref = get("ref")
        if ref:
            if len(ref) > 32:
                problems.append(("ref", "longer than 32 characters"))
            elif ref in existing_refs:
                problems.append(("ref", f"{ref} already exists"))
            elif ref in seen_refs:
                problems.append(("ref", f"{ref} repeats line {seen_refs[ref]}"))
            seen_refs.setdefault(ref, line)
        row.values["ref"] = ref
        title = get("title")
        if not title:
            problems.append(("title", "required"))
        elif len(title) > 200:
            problems.append(("title", "longer than 200 characters"))
        row.values["title"] = title
        severity = get("severity").upper()
        if severity not in Severity.values:
            problems.append(("severity", f"{get('severity')!r} is not one of {', '.join(Severity.values)}"))
        row.values["severity"] = severity
        slug = get("service")
        service = services.get(slug) or services.get(slug.lower())
        if service is None:
            problems.append(("service", f"no service with slug {slug!r}" if slug else "required"))
        row.values["service"] = service
        times: dict[str, datetime | None] = {}
        for column in REQUIRED_TIMES + OPTIONAL_TIMES:
            text = get(column)
            if not text:
                if column in REQUIRED_TIMES:
                    problems.append((column, "required"))
                times[column] = None
                continue
            try:
                times[column] = _parse_time(text)
            except ValueError as exc:
                problems.append((column, str(exc)))
                times[column] = None
            else:
                if times[column] > now:
                    problems.append((column, "is in the future"))
        practice = get("is_practice").lower()
        if practice not in TRUE | FALSE:
            problems.append(("is_practice", f"{get('is_practice')!r} is not true or false"))
        row.values["is_practice"] = practice in TRUE
        reason = get("closure_reason").lower()
        if reason and reason not in Incident.ClosureReason.values:
            problems.append(("closure_reason", f"{reason!r} is not one of {', '.join(Incident.ClosureReason.values)}"))
        row.duplicate_ref = get("duplicate_of")
        if reason == Incident.ClosureReason.DUPLICATE and not row.duplicate_ref:
            problems.append(("duplicate_of", "a duplicate must name the incident it duplicates"))
        row.values["closure_reason"] = reason
        if times.get("closed_at") and not times.get("resolved_at") and not reason:
            problems.append(("resolved_at", "a closed incident needs resolved_at"))
        if not any(column == name for name, _ in problems for column in REQUIRED_TIMES):
            try:
                check_time_order(times)
            except ValidationError as exc:
                for column, messages in exc.message_dict.items():
                    problems.extend((column, message) for message in messages)
        row.values.update(times)
        errors.extend(f"line {line}, column {column}: {message}" for column, message in problems)
        parsed.append(row)
    return parsed, errors


def _status(values: dict) -> str:
    if values["closure_reason"]:
        return Incident.Status.CANCELLED
    for column, status in (
        ("closed_at", Incident.Status.CLOSED),
        ("resolved_at", Incident.Status.RESOLVED),
        ("mitigated_at", Incident.Status.MITIGATED),
        ("acknowledged_at", Incident.Status.ACKNOWLEDGED),
    ):
        if values[column]:
            return status
    return Incident.Status.TRIGGERED


def _allocate_refs(count_by_year: dict[int, int]) -> dict[int, list[str]]:
    refs: dict[int, list[str]] = {}
    with connection.cursor() as cursor:
        for year, count in count_by_year.items():
            cursor.execute(
                "INSERT INTO incidents_refcounter (year, value) VALUES (%s, %s) "
                "ON CONFLICT (year) DO UPDATE SET value = incidents_refcounter.value + EXCLUDED.value RETURNING value",
                [year, count],
            )
            (last,) = cursor.fetchone()
            refs[year] = [f"INC-{year}-{n}" for n in range(last - count + 1, last + 1)]
    return refs


def incidents_import(
    *,
    rows: Iterable[Mapping[str, str]],
    source_name: str = "CSV",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Import incidents from another tool's history. Every timestamp is kept as given (declared_at too).

    Raises ImportFailed listing every problem as "line N, column C: message" and writes nothing."""
    rows = list(rows)
    services = {service.slug: service for service in Service.objects.all()}
    mentioned = {(row.get("ref") or "").strip() for row in rows} | {
        (row.get("duplicate_of") or "").strip() for row in rows
    }
    mentioned.discard("")
    existing = dict(Incident.objects.filter(ref__in=mentioned).values_list("ref", "pk"))
    parsed, errors = _validate(rows, services=services, existing_refs=set(existing))
    # a duplicate may point at an existing incident or at a row of this file that is not a duplicate itself
    originals_in_file = {row.values["ref"] for row in parsed if row.values["ref"] and not row.duplicate_ref}
    for row in parsed:
        if row.duplicate_ref and row.duplicate_ref not in existing and row.duplicate_ref not in originals_in_file:
            errors.append(f"line {row.line}, column duplicate_of: no incident {row.duplicate_ref}")
    if errors:
        raise ImportFailed(errors)

    total = len(parsed)
    with transaction.atomic():
        needed: dict[int, int] = defaultdict(int)
        for row in parsed:
            if not row.values["ref"]:
                needed[row.values["declared_at"].year] += 1
        for row in parsed:  # imported refs of our own form first, so fresh numbers come after them
            if match := OUR_REF.match(row.values["ref"]):
                bump_ref_counter(year=int(match.group(1)), at_least=int(match.group(2)))
        fresh = _allocate_refs(needed)
        for row in parsed:
            if not row.values["ref"]:
                row.values["ref"] = fresh[row.values["declared_at"].year].pop(0)
        pk_by_ref = dict(existing)
        done = 0
        originals = [row for row in parsed if not row.duplicate_ref]
        duplicates = [row for row in parsed if row.duplicate_ref]  # written after the rows they point at
        batches = [
            group[start : start + BATCH] for group in (originals, duplicates) for start in range(0, len(group), BATCH)
        ]
        for batch in batches:
            incidents = []
            for row in batch:
                values = dict(row.values)
                if values["closure_reason"] and not values["closed_at"]:
                    values["closed_at"] = max(
                        value for key, value in values.items() if key.endswith("_at") and value is not None
                    )
                duplicate_of_id = pk_by_ref.get(row.duplicate_ref) if row.duplicate_ref else None
                incidents.append(
                    Incident(
                        status=_status(values), source=Incident.Source.IMPORT, duplicate_of_id=duplicate_of_id, **values
                    )
                )
            Incident.objects.bulk_create(incidents)
            events = []
            for incident in incidents:
                pk_by_ref[incident.ref] = incident.pk
                events.append(
                    IncidentEvent(
                        incident=incident,
                        at=incident.declared_at,
                        kind=IncidentEvent.Kind.IMPORTED,
                        message=f"Imported from {source_name}",
                        data={"imported": True},
                    )
                )
                for column, kind in STAMP_EVENTS:
                    if getattr(incident, column):
                        events.append(
                            IncidentEvent(
                                incident=incident, at=getattr(incident, column), kind=kind, data={"imported": True}
                            )
                        )
                if incident.closed_at:
                    kind = IncidentEvent.Kind.CANCELLED if incident.closure_reason else IncidentEvent.Kind.CLOSED
                    events.append(
                        IncidentEvent(incident=incident, at=incident.closed_at, kind=kind, data={"imported": True})
                    )
            IncidentEvent.objects.bulk_create(events)
            done += len(batch)
            if progress:
                progress(done, total)
        for row in parsed:
            if row.duplicate_ref:
                Incident.objects.filter(pk=pk_by_ref[row.values["ref"]]).update(
                    duplicate_of=pk_by_ref[row.duplicate_ref]
                )
    return total
