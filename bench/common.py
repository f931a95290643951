"""Measuring helpers shared by the benchmark scripts: timing, query counting, database time, the result table."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402


@dataclass
class Row:
    """One line of the table: a measured case next to its baseline, and the target verdict."""

    bench: str
    case: str
    value: float  # in `unit`
    unit: str
    queries: int | None = None
    baseline: float | None = None  # same unit
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


class QueryRecorder:
    """Counts the queries run inside it and sums their database time (client-measured, per execute)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1
            self.sql.append(sql)

    def __enter__(self) -> QueryRecorder:
        self._cm = connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)


@dataclass
class Timing:
    median_ms: float
    p95_ms: float
    runs: int
    queries: int
    db_ms: float  # median database time per run


def measure(fn: Callable[[], object], *, runs: int = 20, warmup: int = 2, max_seconds: float = 20.0) -> Timing:
    """Median and p95 wall time of `fn` after a warm-up, its query count and median database time per run."""
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        if time.perf_counter() - start > max_seconds / 4:
            runs = min(runs, 2)  # a slow case (before a fix at full scale): two timed runs are enough
    times, db_times, queries = [], [], 0
    deadline = time.perf_counter() + max_seconds
    for _ in range(runs):
        with QueryRecorder() as recorder:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        db_times.append(recorder.seconds)
        queries = recorder.count
        if time.perf_counter() > deadline and len(times) >= 3:
            break
    times.sort()
    return Timing(
        median_ms=statistics.median(times) * 1000,
        p95_ms=times[min(len(times) - 1, int(len(times) * 0.95))] * 1000,
        runs=len(times),
        queries=queries,
        db_ms=statistics.median(db_times) * 1000,
    )


def raw_sql(statement: str, params: list | tuple = ()) -> Callable[[], list]:
    def run() -> list:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()

    return run


def machine() -> dict:
    load = Path("/proc/loadavg").read_text().split()[:3]
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[
        1
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute(
            "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 'incidents_incident'),"
            " (SELECT reltuples::bigint FROM pg_class WHERE relname = 'incidents_alert')"
        )
        incidents, alerts = cursor.fetchone()
    return {
        "cpus": cpu,
        "mem_gb": round(int(mem) / 1024 / 1024, 1),
        "load": " ".join(load),
        "postgres": pg,
        "incidents": incidents,
        "alerts": alerts,
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    header = ["benchmark", "case", "result", "queries", "baseline", "ratio", "target", "met"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r.bench,
                r.case,
                fmt(r.value, r.unit),
                "" if r.queries is None else str(r.queries),
                "—" if r.baseline is None else f"{fmt(r.baseline, r.unit)} ({r.baseline_label})",
                "—" if r.ratio is None else f"{r.ratio:.2f}×",
                r.target,
                "" if r.met is None else ("yes" if r.met else "NO"),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
