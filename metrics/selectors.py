"""Metric queries of METRICS.md. Every figure is computed in PostgreSQL; the number of queries does not
depend on the number of incidents."""

from __future__ import annotations

import zoneinfo
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from incidents.models import Incident
from metrics.aggregates import PercentileCont, Seconds
from oncall.models import Team

LOW_SAMPLE = 5
REPEAT_WINDOW = timedelta(days=30)

# name → (later, earlier): the per-incident durations of METRICS.md
DURATIONS: dict[str, tuple[str, str]] = {
    "ttd": ("detected_at", "started_at"),
    "tta": ("acknowledged_at", "detected_at"),
    "ttm": ("mitigated_at", "started_at"),
    "ttr": ("resolved_at", "started_at"),
}
GROUPINGS = {"severity": "severity", "service": "service__slug", "team": "service__team__slug"}


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            year, month = (int(part) for part in text.split("-"))
            date(year, month, 1)
        except (ValueError, TypeError):
            raise ValueError(f"{text!r} is not a month in the form YYYY-MM") from None
        return cls(year, month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def bounds(self, tz_name: str) -> tuple[datetime, datetime]:
        """[1st 00:00, next 1st 00:00) in the zone, as UTC instants."""
        tz = zoneinfo.ZoneInfo(tz_name)
        start = datetime(self.year, self.month, 1, tzinfo=tz)
        nxt = self.next()
        end = datetime(nxt.year, nxt.month, 1, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class DurationStats:
    n: int
    missing: int
    median: float | None  # minutes, one decimal
    mean: float | None
    p90: float | None
    low_sample: bool


@dataclass
class Scope:
    month: Month
    team: Team | None
    time_zone: str
    start: datetime
    end: datetime


@dataclass
class MonthlyMetrics:
    month: str
    team: str | None
    time_zone: str
    start: datetime
    end: datetime
    incidents: int
    previous_incidents: int
    delta: int
    delta_pct: float | None
    open_at_month_end: list[str]
    durations: dict[str, DurationStats]
    by_severity: dict[str, dict]
    by_service: dict[str, dict]
    by_team: dict[str, dict]
    repeats: int
    repeat_rate: float | None
    status_updates: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def scope(*, month: Month, team: Team | None = None) -> Scope:
    tz = team.timezone if team is not None else settings.FIREBREAK_REPORT_TIME_ZONE
    start, end = month.bounds(tz)
    return Scope(month=month, team=team, time_zone=tz, start=start, end=end)


def counted_incidents(*, start: datetime, end: datetime, team: Team | None = None) -> QuerySet[Incident]:
    """Incidents declared in [start, end): not practice, not closed as duplicate, false positive or cancelled."""
    queryset = Incident.objects.filter(declared_at__gte=start, declared_at__lt=end, is_practice=False).exclude(
        status=Incident.Status.CANCELLED
    )
    if team is not None:
        queryset = queryset.filter(service__team=team)
    return queryset


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _duration_aggregates() -> dict:
    aggregates = {}
    for name, (later, earlier) in DURATIONS.items():
        present = Q(**{f"{later}__isnull": False, f"{earlier}__isnull": False})
        seconds = Seconds(later, earlier)
        aggregates[f"{name}_n"] = Count("pk", filter=present)
        aggregates[f"{name}_median"] = PercentileCont(seconds, 0.5, filter=present)
        aggregates[f"{name}_mean"] = Avg(seconds, filter=present)
        aggregates[f"{name}_p90"] = PercentileCont(seconds, 0.9, filter=present)
    aggregates["total"] = Count("pk")
    return aggregates


def _stats(row: dict) -> dict[str, DurationStats]:
    out = {}
    for name in DURATIONS:
        n = row[f"{name}_n"]
        out[name] = DurationStats(
            n=n,
            missing=row["total"] - n,
            median=_minutes(row[f"{name}_median"]),
            mean=_minutes(row[f"{name}_mean"]),
            p90=_minutes(row[f"{name}_p90"]),
            low_sample=n < LOW_SAMPLE,
        )
    return out


def duration_stats(queryset: QuerySet[Incident]) -> dict[str, DurationStats]:
    """n, missing, median, mean and p90 (minutes) of TTD, TTA, TTM and TTR in one query."""
    return _stats(queryset.order_by().aggregate(**_duration_aggregates()))


def grouped_stats(queryset: QuerySet[Incident], grouping: str) -> dict[str, dict]:
    """Per severity, service or team: count and the duration stats, in one query."""
    field_name = GROUPINGS[grouping]
    rows = queryset.order_by().values(field_name).annotate(**_duration_aggregates()).order_by(field_name)
    return {
        row[field_name]: {"incidents": row["total"], **{k: asdict(v) for k, v in _stats(row).items()}} for row in rows
    }


def repeat_count(queryset: QuerySet[Incident]) -> int:
    """Repeats: linked with repeat_of, or another counted incident of the same service started within the
    30 days before this one started (in any month)."""
    earlier = (
        Incident.objects.filter(
            service=OuterRef("service"),
            is_practice=False,
            started_at__lt=OuterRef("started_at"),
            started_at__gte=OuterRef("started_at") - REPEAT_WINDOW,
        )
        .exclude(status=Incident.Status.CANCELLED)
        .exclude(pk=OuterRef("pk"))
    )
    return queryset.filter(Q(repeat_of__isnull=False) | Exists(earlier)).count()


STATUS_UPDATE_GAPS_SQL = """
WITH inc AS (
    SELECT i.id, i.declared_at, COALESCE(i.resolved_at, i.closed_at, %s) AS end_at, p.update_cadence AS cadence
    FROM incidents_incident i JOIN incidents_severitypolicy p ON p.severity = i.severity
    -- = ANY(ARRAY(…)): the ids are read first, then fetched by primary key; `IN (subquery)` was planned
    -- as a hash join over a sequential scan of every incident (bench/RESULTS.md)
    WHERE i.id = ANY(ARRAY({ids})) AND p.update_cadence IS NOT NULL
), points AS (
    SELECT id, declared_at AS at FROM inc
    UNION ALL
    SELECT u.incident_id, u.at FROM incidents_statusupdate u JOIN inc ON inc.id = u.incident_id
    WHERE u.at > inc.declared_at AND u.at < inc.end_at
    UNION ALL
    SELECT id, end_at FROM inc
), gaps AS (
    SELECT points.id, points.at - LAG(points.at) OVER (PARTITION BY points.id ORDER BY points.at) AS gap, inc.cadence
    FROM points JOIN inc ON inc.id = points.id
)
SELECT COUNT(DISTINCT id), COUNT(*) FILTER (WHERE gap > cadence), COUNT(DISTINCT id) FILTER (WHERE gap > cadence)
FROM gaps
"""


def status_update_compliance(queryset: QuerySet[Incident], *, now: datetime | None = None) -> dict:
    """For each incident with an update cadence: gaps between updates (or from the declaration, or up to
    resolution / now) longer than the cadence."""
    ids_sql, ids_params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(STATUS_UPDATE_GAPS_SQL.format(ids=ids_sql), [now or timezone.now(), *ids_params])
        incidents, gaps, late_incidents = cursor.fetchone()
    return {
        "incidents": incidents,
        "overdue_gaps": gaps,
        "incidents_with_overdue_gaps": late_incidents,
        "compliance_rate": None if not incidents else round(100 * (incidents - late_incidents) / incidents, 1),
    }


def _delta_pct(current: int, previous: int) -> float | None:
    return None if previous == 0 else round(100 * (current - previous) / previous, 1)


def monthly_metrics(*, month: Month, team: Team | None = None, now: datetime | None = None) -> MonthlyMetrics:
    s = scope(month=month, team=team)
    counted = counted_incidents(start=s.start, end=s.end, team=team)
    prev_start, prev_end = month.previous().bounds(s.time_zone)
    previous = counted_incidents(start=prev_start, end=prev_end, team=team).count()
    total = counted.count()
    open_refs = list(
        counted.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=s.end))
        .order_by("declared_at")
        .values_list("ref", flat=True)
    )
    repeats = repeat_count(counted)
    return MonthlyMetrics(
        month=str(month),
        team=team.slug if team else None,
        time_zone=s.time_zone,
        start=s.start,
        end=s.end,
        incidents=total,
        previous_incidents=previous,
        delta=total - previous,
        delta_pct=_delta_pct(total, previous),
        open_at_month_end=open_refs,
        durations=duration_stats(counted),
        by_severity=grouped_stats(counted, "severity"),
        by_service=grouped_stats(counted, "service"),
        by_team=grouped_stats(counted, "team"),
        repeats=repeats,
        repeat_rate=None if total == 0 else round(repeats / total, 3),
        status_updates=status_update_compliance(counted, now=now),
    )


def trend(*, months: int, end_month: Month, team: Team | None = None) -> list[dict]:
    """Per month (oldest first): counted incidents by severity and the median TTR in minutes; one query."""
    from django.db.models.functions import TruncMonth

    tz = team.timezone if team is not None else settings.FIREBREAK_REPORT_TIME_ZONE
    first = end_month
    for _ in range(months - 1):
        first = first.previous()
    start, _ = first.bounds(tz)
    _, end = end_month.bounds(tz)
    present = Q(resolved_at__isnull=False)
    rows = (
        counted_incidents(start=start, end=end, team=team)
        .order_by()
        .annotate(month=TruncMonth("declared_at", tzinfo=zoneinfo.ZoneInfo(tz)))
        .values("month")
        .annotate(
            total=Count("pk"),
            p0=Count("pk", filter=Q(severity="P0")),
            p1=Count("pk", filter=Q(severity="P1")),
            p2=Count("pk", filter=Q(severity="P2")),
            p3=Count("pk", filter=Q(severity="P3")),
            ttr_median=PercentileCont(Seconds("resolved_at", "started_at"), 0.5, filter=present),
        )
    )
    by_month = {(row["month"].year, row["month"].month): row for row in rows}
    out = []
    month = first
    for _ in range(months):
        row = by_month.get((month.year, month.month), {})
        out.append(
            {
                "month": str(month),
                "incidents": row.get("total", 0),
                "by_severity": {level: row.get(level.lower(), 0) for level in ("P0", "P1", "P2", "P3")},
                "ttr_median": _minutes(row.get("ttr_median")),
            }
        )
        month = month.next()
    return out


def top_services(queryset: QuerySet[Incident], *, end: datetime, limit: int = 5) -> dict[str, list[dict]]:
    """Services with the most counted incidents, and with the most impact minutes (start to resolution,
    or to the end of the month while unresolved); one query."""
    from django.db.models import DurationField, ExpressionWrapper, F, Sum, Value
    from django.db.models.functions import Coalesce, Least

    impact_end = Least(Coalesce(F("resolved_at"), Value(end)), Value(end))
    rows = list(
        queryset.order_by()
        .values("service__slug", "service__name")
        .annotate(
            incidents=Count("pk"),
            impact=Sum(ExpressionWrapper(impact_end - F("started_at"), output_field=DurationField())),
        )
    )
    for row in rows:
        row["impact_minutes"] = round(row.pop("impact").total_seconds() / 60, 1) if row["impact"] else 0.0
        row["service"] = row.pop("service__name")
        row["slug"] = row.pop("service__slug")
    by_count = sorted(rows, key=lambda row: (-row["incidents"], row["service"]))[:limit]
    by_impact = sorted(rows, key=lambda row: (-row["impact_minutes"], row["service"]))[:limit]
    return {"by_count": by_count, "by_impact": by_impact}


def major_incidents(queryset: QuerySet[Incident]) -> list[dict]:
    """The month's P0 and P1 incidents, oldest first."""
    rows = (
        queryset.filter(severity__in=["P0", "P1"])
        .order_by("declared_at")
        .annotate(ttr_seconds=Seconds("resolved_at", "started_at"))
        .values("pk", "ref", "title", "severity", "status", "service__name", "declared_at", "ttr_seconds")
    )
    return [
        {
            "id": row["pk"],
            "ref": row["ref"],
            "title": row["title"],
            "severity": row["severity"],
            "status": row["status"],
            "service": row["service__name"],
            "declared_at": row["declared_at"],
            "ttr_minutes": _minutes(row["ttr_seconds"]),
        }
        for row in rows
    ]


def report_data(*, month: Month, team: Team | None = None) -> dict:
    """Everything the monthly review shows, as plain JSON-able data (a fixed number of queries).

    Read in one transaction with PostgreSQL's JIT compilation off: the report's statements each run for well
    under a second, and compiling them took longer than it saved (at 1M incidents, 340 ms of compilation for
    a 200 ms statement; the report 1.6 s with JIT, 1.15 s without: bench/RESULTS.md)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        return _report_data(month=month, team=team)


def _report_data(*, month: Month, team: Team | None) -> dict:
    metrics = monthly_metrics(month=month, team=team)
    counted = counted_incidents(start=metrics.start, end=metrics.end, team=team)
    data = metrics.as_dict()
    prev_start, prev_end = month.previous().bounds(metrics.time_zone)
    previous = duration_stats(counted_incidents(start=prev_start, end=prev_end, team=team))
    data["previous_durations"] = {name: asdict(stats) for name, stats in previous.items()}
    data["top_services"] = top_services(counted, end=metrics.end)
    data["major_incidents"] = major_incidents(counted)
    data["trend"] = trend(months=12, end_month=month, team=team)
    from metrics import sections  # the sections over postmortems (and later alerts, game days)

    data.update(sections.report_sections(month=month, team=team, start=metrics.start, end=metrics.end))
    statuses = sections.major_incident_postmortems([row["ref"] for row in data["major_incidents"]])
    for row in data["major_incidents"]:
        row["postmortem"] = statuses.get(row["ref"], "")
    return data
