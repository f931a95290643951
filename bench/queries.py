"""In-process benchmarks 2–6: admin list, API list, monthly report, on-call lookups, shift generation.

Each case is measured next to its own baseline in the same run (hand-written SQL, or the raw write) and
printed with its query count. Run through `make bench` or `python -m bench.queries`.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import OperationalError, connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from bench.common import Row, measure, raw_sql  # sets up Django
from incidents.models import Incident  # noqa: E402
from metrics import selectors as metrics_selectors  # noqa: E402
from oncall import selectors as oncall_selectors  # noqa: E402
from oncall.models import EscalationPolicy, Rotation, RotationMember, Shift, TeamMembership  # noqa: E402
from oncall.services.generation import rotation_generate  # noqa: E402

User = get_user_model()
BENCH_ADMIN = "bench-admin"

LIST_COLUMNS = """
    i.id, i.ref, i.title, i.severity, i.status, i.declared_at, i.resolved_at, i.closed_at,
    s.id, s.name, t.id, t.name, u.id, u.username, u.first_name, u.last_name
"""
LIST_FROM = """
    FROM incidents_incident i
    JOIN incidents_service s ON s.id = i.service_id
    JOIN oncall_team t ON t.id = s.team_id
    LEFT JOIN auth_user u ON u.id = i.commander_id
"""


def _client() -> Client:
    client = Client()
    client.force_login(User.objects.get(username=BENCH_ADMIN))
    return client


def _get(client: Client, url: str):
    def run():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
        return response

    return run


def _sample_ref() -> str:
    """A reference from the middle of the table (neither the newest nor the oldest page)."""
    n = Incident.objects.order_by().count()
    return Incident.objects.order_by("id").values_list("ref", flat=True)[n // 2]


def _page_sql(where: str = "") -> str:
    return f"SELECT {LIST_COLUMNS} {LIST_FROM} {where} ORDER BY i.declared_at DESC, i.id DESC LIMIT 51"


def _count_sql(where: str = "") -> str:
    """The admin page's other statement: its count, capped at 10,001 rows as the changelist counts
    (`incidents.admin.CappedCountPaginator`), written by hand."""
    return (
        f"SELECT count(*) FROM (SELECT i.id FROM incidents_incident i {where} "
        "ORDER BY i.declared_at DESC, i.id DESC LIMIT 10001) page_count"
    )


def _both(*statements):
    """Run several hand-written statements as one baseline (the admin page runs its rows and its count)."""

    def run() -> list:
        return [raw_sql(sql, params)() for sql, params in statements]

    return run


def _list_rows(bench: str, name: str, client: Client, url: str, baseline, *, admin: bool) -> Row:
    page = measure(_get(client, url), runs=15)
    base = measure(baseline, runs=30)
    notes = f"page {page.median_ms:.1f} ms (p95 {page.p95_ms:.1f}); DB {page.db_ms:.1f} ms in {page.queries} queries"
    if admin:
        target, met = "DB ≤ 2× SQL, ≤ 15 queries", page.db_ms <= 2 * base.median_ms and page.queries <= 15
    else:
        target, met = "", None
    return Row(
        bench, name, page.db_ms, "ms", page.queries, base.median_ms, "hand SQL", target, met, notes,
        extra={"page_ms": page.median_ms, "page_p95_ms": page.p95_ms, "sql_ms": base.median_ms},
    )  # fmt: skip


def bench_admin_list() -> list[Row]:
    client = _client()
    ref = _sample_ref()
    base = "/admin/incidents/incident/"
    cases = [
        ("plain", base, "", []),
        (
            "severity=P1 & status=closed",
            f"{base}?severity__exact=P1&status__exact=closed",
            "WHERE i.severity = %s AND i.status = %s",
            ["P1", "closed"],
        ),
        ("search by ref", f"{base}?q={ref}", "WHERE i.ref = %s", [ref]),
    ]
    rows = []
    for name, url, where, params in cases:
        baseline = _both((_page_sql(where), params), (_count_sql(where), params))
        rows.append(_list_rows("2 admin list", name, client, url, baseline, admin=True))
    return rows


def bench_api_list() -> list[Row]:
    client = _client()
    ref = _sample_ref()
    base = "/api/v1/incidents/"
    cases = [
        ("plain", base, _page_sql(), []),
        (
            "severity=P1 & status=closed",
            f"{base}?severity=P1&status=closed",
            _page_sql("WHERE i.severity = %s AND i.status = %s"),
            ["P1", "closed"],
        ),
        (
            "team + declared_after",
            f"{base}?team=team-07&declared_after=2024-01-01T00:00:00Z",
            _page_sql("WHERE t.slug = %s AND i.declared_at >= %s"),
            ["team-07", datetime(2024, 1, 1, tzinfo=UTC)],
        ),
        ("q=ref", f"{base}?q={ref}", _page_sql("WHERE i.ref = %s"), [ref]),
    ]
    # the API pages by cursor and counts nothing: its baseline is the page's statement alone
    return [_list_rows("3 API list", name, client, url, raw_sql(sql, p), admin=False) for name, url, sql, p in cases]


# The best single statement for the figures the report is built on: the month's counted incidents with their
# duration percentiles, overall and per severity / service / team (GROUPING SETS), in one scan.
REPORT_SQL = """
WITH counted AS (
    SELECT i.severity, s.slug AS service, t.slug AS team,
           extract(epoch FROM i.detected_at - i.started_at) AS ttd,
           extract(epoch FROM i.acknowledged_at - i.detected_at) AS tta,
           extract(epoch FROM i.mitigated_at - i.started_at) AS ttm,
           extract(epoch FROM i.resolved_at - i.started_at) AS ttr
    FROM incidents_incident i
    JOIN incidents_service s ON s.id = i.service_id JOIN oncall_team t ON t.id = s.team_id
    WHERE i.declared_at >= %s AND i.declared_at < %s AND NOT i.is_practice AND i.status <> 'cancelled'
)
SELECT severity, service, team, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttd), avg(ttd), percentile_cont(0.9) WITHIN GROUP (ORDER BY ttd),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tta), avg(tta), percentile_cont(0.9) WITHIN GROUP (ORDER BY tta),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttm), avg(ttm), percentile_cont(0.9) WITHIN GROUP (ORDER BY ttm),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttr), avg(ttr), percentile_cont(0.9) WITHIN GROUP (ORDER BY ttr)
FROM counted GROUP BY GROUPING SETS ((), (severity), (service), (team))
"""


REPORT_TIMEOUT_S = int(os.environ.get("BENCH_REPORT_TIMEOUT", "60"))


def _report_row(month, start, end, label: str) -> Row:
    # one untimed run under a statement timeout first: without the index, repeat_count runs for minutes at 1m
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = '{REPORT_TIMEOUT_S}s'")
            started = time.perf_counter()
            metrics_selectors.report_data(month=month)
            first = time.perf_counter() - started
    except OperationalError:
        return Row(
            "4 monthly report", f"report_data {month}{label}", REPORT_TIMEOUT_S * 1000, "ms", None, None, "",
            "< 2,000 ms", False, f"cancelled by statement_timeout after {REPORT_TIMEOUT_S} s (a lower bound)",
        )  # fmt: skip
    timing = measure(
        lambda: metrics_selectors.report_data(month=month), runs=5 if first < 10 else 1, warmup=0, max_seconds=60
    )
    tracemalloc.start()
    metrics_selectors.report_data(month=month)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    base = measure(raw_sql(REPORT_SQL, [start, end]), runs=5, warmup=1, max_seconds=30)
    n = metrics_selectors.counted_incidents(start=start, end=end).count()
    return Row(
        "4 monthly report", f"report_data {month} ({n:,} incidents){label}", timing.median_ms, "ms", timing.queries,
        base.median_ms, "one SQL", "< 2,000 ms", timing.median_ms < 2000,
        f"DB {timing.db_ms:.0f} ms (p95 {timing.p95_ms:.0f} ms total); peak Python memory "
        f"{peak / 1024 / 1024:.1f} MiB (tracemalloc)",
        extra={"peak_mib": peak / 1024 / 1024, "db_ms": timing.db_ms},
    )  # fmt: skip


def bench_monthly_report() -> list[Row]:
    """The last full month, on the database as migrated (incidents_repeat_window_idx, migration 0009, is the
    index the first profile asked for: bench/RESULTS.md)."""
    month = metrics_selectors.Month.parse((datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    start, end = month.bounds("UTC")
    return [_report_row(month, start, end, "")]


CHAIN_CURRENT_SQL = """
SELECT s.rotation_id, s.user_id, u.username, u.email FROM oncall_shift s LEFT JOIN auth_user u ON u.id = s.user_id
WHERE s.rotation_id = ANY(%s::bigint[]) AND s.period @> %s
"""
CHAIN_NEXT_SQL = """
SELECT DISTINCT ON (s.rotation_id) s.rotation_id, s.user_id, u.username, u.email
FROM oncall_shift s LEFT JOIN auth_user u ON u.id = s.user_id
WHERE s.rotation_id = ANY(%s::bigint[]) AND lower(s.period) > %s AND lower(s.period) > %s AND lower(s.period) <= %s
  AND s.user_id IS DISTINCT FROM (
      SELECT c.user_id FROM oncall_shift c WHERE c.rotation_id = s.rotation_id AND c.period @> %s)
ORDER BY s.rotation_id, lower(s.period)
"""
CHAIN_MANAGERS_SQL = """
SELECT u.id, u.username, u.email FROM oncall_teammembership m JOIN auth_user u ON u.id = m.user_id
WHERE m.team_id = %s AND m.role = 'manager' ORDER BY u.username
"""


def bench_oncall() -> list[Row]:
    now = datetime.now(UTC)
    rotation_ids = list(Rotation.objects.order_by("id").values_list("id", flat=True))
    state = {"i": 0}

    def holder() -> object:
        state["i"] += 1
        return oncall_selectors.holder_at(rotation_id=rotation_ids[state["i"] % len(rotation_ids)], at=now)

    def holder_sql() -> object:
        state["i"] += 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.user_id, u.username FROM oncall_shift s LEFT JOIN auth_user u ON u.id = s.user_id "
                "WHERE s.rotation_id = %s::bigint AND s.period @> %s LIMIT 1",
                [rotation_ids[state["i"] % len(rotation_ids)], now],
            )
            return cursor.fetchone()

    policies = list(oncall_selectors.policies_with_steps().order_by("id"))

    def paged() -> object:
        state["i"] += 1
        policy = policies[state["i"] % len(policies)]
        return oncall_selectors.escalation_chain(policy=policy, at=now)

    # the same resolution written by hand: the current shifts, the next different holder per rotation
    # (DISTINCT ON), the team's managers: three statements, as the selector runs
    def chain_statements(policy) -> list:
        targets = [t for step in policy.steps.all() for t in step.targets.all()]
        rotations = sorted({t.rotation_id for t in targets if t.rotation_id})
        return [
            (CHAIN_CURRENT_SQL, [rotations, now]),
            (CHAIN_NEXT_SQL, [rotations, now, now, now + timedelta(days=15), now]),
            (CHAIN_MANAGERS_SQL, [policy.team_id]),
        ]

    hand_chains = [_both(*chain_statements(policy)) for policy in policies]

    def paged_sql() -> object:
        state["i"] += 1
        return hand_chains[state["i"] % len(hand_chains)]()

    targets_per_chain = sum(len(t.targets.all()) for p in policies for t in p.steps.all()) / len(policies)

    def paged_one_step() -> object:
        state["i"] += 1
        policy = EscalationPolicy.objects.get(pk=policies[state["i"] % len(policies)].pk)
        return oncall_selectors.escalation_paged_at(policy=policy, step=1, at=now)

    h = measure(holder, runs=300, warmup=20)
    hs = measure(holder_sql, runs=300, warmup=20)
    all_now = measure(lambda: oncall_selectors.oncall_now(at=now), runs=30, warmup=3)
    chain = measure(paged, runs=200, warmup=10)
    chain_sql = measure(paged_sql, runs=200, warmup=10)
    per_target = chain.median_ms / targets_per_chain
    step = measure(paged_one_step, runs=100, warmup=5)
    n_shifts = Shift.objects.count()
    return [
        Row("5 on-call", f"holder_at (1 rotation, {n_shifts:,} shifts)", h.median_ms, "ms", h.queries, hs.median_ms,
            "hand SQL", "< 2 ms", h.median_ms < 2, f"p95 {h.p95_ms:.2f} ms"),
        Row("5 on-call", f"oncall_now ({len(rotation_ids)} rotations)", all_now.median_ms, "ms", all_now.queries,
            None, "", "", None, f"p95 {all_now.p95_ms:.2f} ms; DB {all_now.db_ms:.2f} ms"),
        Row("5 on-call", f"escalation_chain (prefetched policy, {targets_per_chain:.1f} targets)", chain.median_ms,
            "ms", chain.queries, chain_sql.median_ms, "hand SQL, 3 statements", "< 2 ms per target", per_target < 2,
            f"{per_target:.2f} ms per target; p95 {chain.p95_ms:.2f} ms; DB {chain.db_ms:.2f} ms"),
        Row("5 on-call", "escalation_paged_at (policy by id, as the engine)", step.median_ms, "ms", step.queries,
            chain_sql.median_ms, "hand SQL, 3 statements", "", None,
            f"p95 {step.p95_ms:.2f} ms; DB {step.db_ms:.2f} ms"),
    ]  # fmt: skip


class _Rollback(Exception):  # noqa: N818
    pass


def bench_shift_generation(rotations: int = 100) -> list[Row]:
    """rotation_generate for 100 new rotations with a one-year horizon, inside a transaction rolled back at the
    end (the loaded data stays as it is); baseline: bulk_create of the same rows."""
    now = datetime.now(UTC)
    managers = dict(TeamMembership.objects.filter(role="manager").values_list("team_id", "user_id"))
    teams = sorted(managers)
    result: dict = {}
    try:
        with transaction.atomic():
            created = []
            for k in range(rotations):
                team_id = teams[k % len(teams)]
                members = list(
                    User.objects.filter(team_memberships__team_id=team_id).order_by("id").values_list("id", flat=True)
                )[26 + (k // len(teams)) * 8 : 34 + (k // len(teams)) * 8]
                unit, count = [("weekly", 1), ("daily", 1), ("hourly", 12)][k % 3]
                rotation = Rotation.objects.create(
                    team_id=team_id, name=f"bench-gen-{k}", layer="primary", timezone="Europe/Berlin", unit=unit,
                    count=count, handoff_weekday=0 if unit == "weekly" else None, anchor_date=now.date(),
                    horizon=timedelta(days=365),
                )  # fmt: skip
                RotationMember.objects.bulk_create(
                    RotationMember(rotation=rotation, user_id=u, position=i) for i, u in enumerate(members)
                )
                created.append(rotation)
            from bench.common import QueryRecorder

            with QueryRecorder() as recorder:
                start = time.perf_counter()
                for rotation in created:
                    rotation_generate(rotation=rotation, now=now)
                result["gen_s"] = time.perf_counter() - start
            result["queries"] = recorder.count
            rows = list(Shift.objects.filter(rotation__in=created).values())
            result["shifts"] = len(rows)
            Shift.objects.filter(rotation__in=created).delete()
            for row in rows:
                row.pop("id")
            start = time.perf_counter()
            Shift.objects.bulk_create([Shift(**row) for row in rows], batch_size=2000)
            result["bulk_s"] = time.perf_counter() - start
            raise _Rollback
    except _Rollback:
        pass
    return [
        Row("6 shift generation", f"{rotations} rotations × 1 year ({result['shifts']:,} shifts)",
            result["gen_s"] * 1000, "ms", result["queries"], result["bulk_s"] * 1000, "bulk_create same rows", "",
            None, f"{result['gen_s'] * 1000 / rotations:.1f} ms per rotation"),
    ]  # fmt: skip


ALL = [bench_admin_list, bench_api_list, bench_monthly_report, bench_oncall, bench_shift_generation]


if __name__ == "__main__":
    import sys

    from bench.common import table

    wanted = sys.argv[1:]
    rows = []
    for fn in ALL:
        if not wanted or any(w in fn.__name__ for w in wanted):
            rows += fn()
    print(table(rows))
    for r in rows:
        if r.notes:
            print(f"- {r.bench} / {r.case}: {r.notes}")
