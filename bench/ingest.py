"""Benchmark 1: alert ingestion over HTTP. gunicorn (2 sync workers, DEBUG off, bench.settings) on 127.0.0.1,
wrk (2 threads, 8 connections, BENCH_WRK_SECONDS each, default 10) posting Alertmanager v4 payloads of 1 and
10 alerts to /hooks/alertmanager/<key>/; baseline: /bench/baseline/ (parse JSON, INSERT one row), same
server, same run. Traffic goes to 127.0.0.1 only and every run is bounded in time."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.db import connection  # noqa: E402

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("alertmanager.lua")
KEY = "bench-key-0001"  # the generator gives integration 1 this key (digest stored) and no rate limit to speak of
SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
THREADS, CONNECTIONS, WORKERS = 2, 8, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _to_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def _wrk(url: str, alerts: int, seconds: int = SECONDS) -> dict:
    env = {**os.environ, "ALERTS": str(alerts)}
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(LUA),
         url],
        capture_output=True, text=True, env=env, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    if not re.search(r"^\s+50%\s+[\d.]+(us|ms|s|m)\s*$", out, re.MULTILINE):
        raise RuntimeError(f"wrk gave no latency distribution for {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50": _to_ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.MULTILINE).group(1)),
        "p99": _to_ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.MULTILINE).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
        "raw": out,
    }


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 — fixed table names
        return cursor.fetchone()[0]


def bench_ingestion() -> list[Row]:
    if shutil.which("wrk") is None:
        print("wrk not found (apt-get install -y wrk): ingestion benchmark skipped", file=sys.stderr)
        return [Row("1 ingestion", "skipped: wrk not installed", 0, "", notes="apt-get install -y wrk")]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, body jsonb NOT NULL,"
            " received_at timestamptz NOT NULL)"
        )
        cursor.execute("UPDATE incidents_integration SET rate_limit_per_minute = 1000000000 WHERE id = 1")
    connection.close()  # gunicorn's workers get their own connections
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        # the tasks an opened incident enqueues go to a broker folder of the bench, not the worktree's var/
        "CELERY_BROKER_URL": os.environ.get("BENCH_CELERY_BROKER_URL", "memory://"),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "config.wsgi", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    rows: list[Row] = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 — localhost
                break
            except OSError:
                time.sleep(0.1)
        # warm-up, not measured: workers import everything, and the 40 alert groups of the wrk script open their
        # incidents (in production most alerts join an open group; opening one is the rarer, heavier path)
        _wrk(f"{base}/bench/baseline/", 1, seconds=2)
        _wrk(f"{base}/hooks/alertmanager/{KEY}/", 1, seconds=3)
        baseline_before = _count("bench_baseline")
        baseline = _wrk(f"{base}/bench/baseline/", 1)
        baseline_rows = _count("bench_baseline") - baseline_before
        for alerts in (1, 10):
            before = _count("incidents_alert")
            result = _wrk(f"{base}/hooks/alertmanager/{KEY}/", alerts)
            stored = _count("incidents_alert") - before
            alerts_per_s = result["rps"] * alerts
            ok = result["non2xx"] == 0 and not result["socket_errors"]
            rows.append(
                Row(
                    "1 ingestion",
                    f"Alertmanager, {alerts} alert{'s' if alerts > 1 else ''}/request",
                    alerts_per_s,
                    "alerts/s",
                    None,
                    baseline["rps"],
                    "1-row view, rows/s",
                    "≥ 1,000/s and ≥ 0.5× baseline",
                    ok and alerts_per_s >= 1000 and alerts_per_s >= 0.5 * baseline["rps"],
                    f"{result['rps']:.0f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms; "
                    f"{result['requests']} requests, {stored} alerts stored, non-2xx {result['non2xx']}"
                    f"{', socket errors ' + result['socket_errors'] if result['socket_errors'] else ''}; "
                    f"baseline p50 {baseline['p50']:.1f} ms, p99 {baseline['p99']:.1f} ms",
                    extra={"result": {k: v for k, v in result.items() if k != "raw"}, "stored": stored},
                )  # fmt: skip
            )
        rows.append(
            Row(
                "1 ingestion",
                "baseline: minimal view, 1 INSERT",
                baseline["rps"],
                "rows/s",
                None,
                None,
                "",
                "",
                None,
                f"p50 {baseline['p50']:.1f} ms, p99 {baseline['p99']:.1f} ms; {baseline_rows} rows stored, "
                f"non-2xx {baseline['non2xx']}",
            )  # fmt: skip
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return rows


if __name__ == "__main__":
    from bench.common import table

    rows = bench_ingestion()
    print(table(rows))
    for r in rows:
        print(f"- {r.case}: {r.notes}")
