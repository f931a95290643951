"""Report sections built on the layers below incidents: postmortems and action items (METRICS.md).

Each section is one or two SQL statements; the number of queries does not grow with the data."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from incidents.models import Incident
from metrics.selectors import Month, counted_incidents
from oncall.models import Team
from postmortems.models import ActionItem, Postmortem


def _local_first_days(month: Month) -> tuple[date, date]:
    return month.first_day(), month.next().first_day()


def action_items_section(*, month: Month, team: Team | None, tz: str, end: datetime) -> dict:
    """Action items due in M (local due date in M, not won't-do): on-time rate, completion rate; and the
    overdue count at the end of M (due before the first local day of M+1, in any month, and not completed
    by the end of M)."""
    import zoneinfo

    first, next_first = _local_first_days(month)
    items = ActionItem.objects.exclude(status=ActionItem.Status.WONT_DO)
    if team is not None:
        items = items.filter(team=team)
    due = (
        items.filter(due_on__gte=first, due_on__lt=next_first)
        .annotate(completed_on=TruncDate("completed_at", tzinfo=zoneinfo.ZoneInfo(tz)))
        .aggregate(
            due=Count("pk"),
            completed=Count("pk", filter=Q(status=ActionItem.Status.DONE)),
            on_time=Count("pk", filter=Q(status=ActionItem.Status.DONE, completed_on__lte=F("due_on"))),
        )
    )
    overdue = items.filter(due_on__lt=next_first).filter(Q(completed_at__isnull=True) | Q(completed_at__gte=end))
    by_owner = (
        overdue.order_by()
        .values("owner__username", "team__name")
        .annotate(count=Count("pk"))
        .order_by("-count", "owner__username")
    )
    total = due["due"]
    return {
        "due": total,
        "completed": due["completed"],
        "on_time": due["on_time"],
        "on_time_rate": None if not total else round(100 * due["on_time"] / total, 1),
        "completion_rate": None if not total else round(100 * due["completed"] / total, 1),
        "overdue": overdue.count(),
        "overdue_by_owner": [
            {"owner": row["owner__username"] or "(no owner)", "team": row["team__name"] or "—", "count": row["count"]}
            for row in by_owner
        ],
    }


POSTMORTEM_TIMELINESS_SQL = """
SELECT
    COUNT(*),
    COUNT(*) FILTER (WHERE published IS NOT NULL AND published < due_end),
    COUNT(*) FILTER (WHERE published IS NOT NULL AND published >= due_end),
    COUNT(*) FILTER (WHERE published IS NULL AND due_end <= %s)
FROM (
    SELECT
        ((date_trunc('day', i.resolved_at AT TIME ZONE t.timezone)
          + CEIL(EXTRACT(EPOCH FROM p.postmortem_deadline) / 86400) * INTERVAL '1 day'
          + INTERVAL '1 day') AT TIME ZONE t.timezone) AS due_end,
        (SELECT MIN(pm.published_at) FROM postmortems_postmortem pm
         JOIN postmortems_postmortem_incidents link ON link.postmortem_id = pm.id
         WHERE link.incident_id = i.id) AS published
    FROM incidents_incident i
    JOIN incidents_severitypolicy p ON p.severity = i.severity
    JOIN incidents_service s ON s.id = i.service_id
    JOIN oncall_team t ON t.id = s.team_id
    -- = ANY(ARRAY(…)): the ids are read first, then fetched by primary key; `IN (subquery)` was planned
    -- as a hash join over a sequential scan of every incident (bench/RESULTS.md)
    WHERE i.id = ANY(ARRAY({ids})) AND p.postmortem_required AND i.resolved_at IS NOT NULL
) per_incident
"""


def postmortems_section(*, team: Team | None, start: datetime, end: datetime, now: datetime | None = None) -> dict:
    """Postmortem timeliness for the incidents of M whose severity requires one and that are resolved:
    due = end of (local resolve date in the team's zone + the severity's deadline); on time, late, or
    overdue-unpublished. Plus the postmortems published in M."""
    ids_sql, ids_params = counted_incidents(start=start, end=end, team=team).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(POSTMORTEM_TIMELINESS_SQL.format(ids=ids_sql), [now or timezone.now(), *ids_params])
        required, on_time, late, overdue = cursor.fetchone()
    published = Postmortem.objects.filter(published_at__gte=start, published_at__lt=end)
    if team is not None:
        published = published.filter(incidents__service__team=team).distinct()
    return {
        "required": required,
        "on_time": on_time,
        "late": late,
        "overdue_unpublished": overdue,
        "published": [
            {"id": pk, "title": title, "url": f"/admin/postmortems/postmortem/{pk}/change/"}
            for pk, title in published.order_by("published_at").values_list("pk", "title")
        ],
    }


def postmortem_status_subquery() -> Subquery:
    """The status of the newest postmortem covering an incident (for the P0/P1 list)."""
    return Subquery(Postmortem.objects.filter(incidents=OuterRef("pk")).order_by("-id").values("status")[:1])


# As `incidents.alerting.selectors.alert_noise`: grouped per incident first, each incident then read by primary key,
# so that PostgreSQL does not hash the whole incident table to learn which few are practice (bench/RESULTS.md).
ALERTS_SECTION_SQL = """
WITH per_incident AS MATERIALIZED (
    SELECT a.incident_id, count(*) AS alerts,
           count(*) FILTER (WHERE NOT a.actionable OR a.suppressed = 'flap') AS not_actionable
    FROM incidents_alert a {team_join}
    WHERE a.received_at >= %(start)s AND a.received_at < %(end)s {team_filter}
    GROUP BY 1
)
SELECT coalesce(sum(alerts), 0), coalesce(sum(not_actionable) FILTER (WHERE incident_id IS NULL), 0)
FROM per_incident p
WHERE p.incident_id IS NULL
   OR NOT (SELECT i.is_practice FROM incidents_incident i WHERE i.id = p.incident_id)
"""


def alerts_section(*, team: Team | None, start: datetime, end: datetime, incidents: int) -> dict:
    """Alert noise: the share of deduplicated alerts of M (one row per alert, repeats folded in), not tied to a
    practice incident, that led to no incident and were not actionable — informational alerts, and flaps
    that resolved within their route's delay (counted as noise); plus alerts per counted incident. One query."""
    from incidents.alerting.selectors import alert_team_sql

    sql = ALERTS_SECTION_SQL.format(**alert_team_sql(team.pk if team is not None else None))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "end": end, "team_id": team.pk if team is not None else None})
        total, noise = cursor.fetchone()
    return {
        "total": total,
        "noise": noise,
        "noise_pct": None if not total else round(100 * noise / total, 1),
        "per_incident": None if not incidents else round(total / incidents, 1),
    }


def game_days_section(*, team: Team | None, start: datetime, end: datetime) -> list[dict]:
    from incidents.models import GameDay

    game_days = GameDay.objects.filter(scheduled_for__gte=start, scheduled_for__lt=end)
    if team is not None:
        game_days = game_days.filter(services__team=team).distinct()
    return [
        {"title": title, "status": status, "outcome": outcome or ""}
        for title, status, outcome in game_days.order_by("scheduled_for").values_list("title", "status", "outcome")
    ]


# One scan of the action items, whatever the number of months: each item is placed by `width_bucket` (how many
# month ends are at or before its creation, completion and due date), grouped, and the months are summed from
# those few groups in Python. The first form joined every item to every month end (12 × the table: 1.2 s at
# 300,000 items, bench/RESULTS.md).
BURNDOWN_SQL = """
SELECT width_bucket(a.created_at, %s::timestamptz[]) AS created,
       CASE WHEN a.completed_at IS NULL THEN NULL ELSE width_bucket(a.completed_at, %s::timestamptz[]) END AS done,
       width_bucket(a.due_on, %s::date[]) AS due,
       COUNT(*)
FROM postmortems_actionitem a
WHERE a.status <> 'wont_do' AND a.created_at < %s {team_filter}
GROUP BY 1, 2, 3
"""


def action_item_burndown(*, month: Month, team: Team | None, tz: str, months: int = 12) -> list[dict]:
    """Open (and overdue) action items at the end of each of the last `months` months; one query.

    Open at a month's end: created before it and not completed before it (won't-do items never count).
    Overdue: open, and due before that end's date in `tz`."""
    ends, labels, cursor = [], [], month
    for _ in range(months):
        ends.append(cursor.bounds(tz)[1])
        labels.append(str(cursor))
        cursor = cursor.previous()
    ends, labels = ends[::-1], labels[::-1]
    zone = ZoneInfo(tz)
    dates = [end.astimezone(zone).date() for end in ends]
    team_filter = "AND a.team_id = %s" if team is not None else ""
    params = [ends, ends, dates, ends[-1]] + ([team.pk] if team is not None else [])
    with connection.cursor() as db:
        db.execute(BURNDOWN_SQL.format(team_filter=team_filter), params)
        groups = db.fetchall()
    rows = []
    # with k month ends at or before a time, the time is before month end number k + 1 (1-based), and after
    for k, label in enumerate(labels, start=1):
        open_ = overdue = 0
        for created, done, due, count in groups:
            if created < k and (done is None or done >= k):
                open_ += count
                if due is not None and due < k:  # no due date: never overdue
                    overdue += count
        rows.append({"month": label, "open": open_, "overdue": overdue})
    return rows


def noisiest_alerts(*, team: Team | None, start: datetime, end: datetime) -> list[dict]:
    from incidents.alerting.selectors import alert_noise

    rows = alert_noise(since=start, until=end, limit=5, team_id=team.pk if team is not None else None)
    return [
        {
            "integration": row.integration,
            "service": row.service,
            "alertname": row.alertname or "(no alertname)",
            "received": row.received,
            "without_incident": row.without_incident,
        }
        for row in rows
    ]


def report_sections(*, month: Month, team: Team | None, start: datetime, end: datetime) -> dict:
    tz = team.timezone if team is not None else None
    from django.conf import settings

    tz = tz or settings.FIREBREAK_REPORT_TIME_ZONE
    from incidents.runbooks.selectors import runbooks_stale

    incidents = counted_incidents(start=start, end=end, team=team).count()
    return {
        "action_items": action_items_section(month=month, team=team, tz=tz, end=end),
        "postmortems": postmortems_section(team=team, start=start, end=end),
        "alerts": alerts_section(team=team, start=start, end=end, incidents=incidents),
        "game_days": game_days_section(team=team, start=start, end=end),
        "stale_runbooks": runbooks_stale(team_id=team.pk if team else None),
        "action_item_burndown": action_item_burndown(month=month, team=team, tz=tz),
        "noisiest_alerts": noisiest_alerts(team=team, start=start, end=end),
    }


def major_incident_postmortems(refs: list[str]) -> dict[str, str]:
    rows = Incident.objects.filter(ref__in=refs).annotate(pm=postmortem_status_subquery()).values_list("ref", "pm")
    return {ref: status for ref, status in rows if status}
