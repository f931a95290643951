"""Where an Alertmanager request spends its time: in-process (Django test client, no HTTP), one request of
N alerts (default 10) to a fresh group, then cProfile's top functions and the queries grouped by shape.
With `loop`: the mean time per request over 300 requests (baseline view, 1 alert, 10 alerts), and how much of
it the database round trips take.

    DATABASE_URL=… python -m bench.profile_ingest [N]
    DATABASE_URL=… python -m bench.profile_ingest loop
"""

from __future__ import annotations

import cProfile
import json
import pstats
import re
import sys
import time
import uuid
from collections import defaultdict

from django.test import Client  # noqa: E402

from bench.common import QueryRecorder

KEY = "bench-key-0001"


class ShapeRecorder(QueryRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.by_shape: dict[str, list[float]] = defaultdict(list)

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            self.count += 1
            self.seconds += elapsed
            shape = re.sub(r"\s+", " ", sql)[:110]
            self.by_shape[shape].append(elapsed)


def payload(n: int, group: str) -> str:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "BenchProfile", "severity": "critical", "n": f"{uuid.uuid4()}"},
            "annotations": {"summary": "profile"},
            "startsAt": "2026-01-01T00:00:00Z",
            "fingerprint": f"profile-{uuid.uuid4()}",
        }
        for _ in range(n)
    ]
    return json.dumps({"version": "4", "groupKey": f'{{}}:{{g="{group}"}}', "status": "firing", "alerts": alerts})


def loop(requests: int = 300) -> None:
    """Mean in-process time per request: what a web worker spends, without HTTP parsing or the network."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, body jsonb NOT NULL,"
            " received_at timestamptz NOT NULL)"
        )
    client = Client()
    group = f"loop-{uuid.uuid4()}"
    hook = f"/hooks/alertmanager/{KEY}/"
    cases = [("baseline view, 1 INSERT", "/bench/baseline/", 1), ("Alertmanager, 1 alert", hook, 1),
             ("Alertmanager, 10 alerts", hook, 10)]  # fmt: skip
    for name, url, n in cases:
        for _ in range(20):  # warm-up; the first Alertmanager request opens the group's incident
            client.post(url, payload(n, group), content_type="application/json")
        bodies = [payload(n, group) for _ in range(requests)]
        with QueryRecorder() as recorder:
            start = time.perf_counter()
            for body in bodies:
                response = client.post(url, body, content_type="application/json")
                assert response.status_code == 200, response.content
            total = time.perf_counter() - start
        print(f"{name}: {total / requests * 1000:.2f} ms per request, {recorder.count / requests:.0f} queries, "
              f"database round trips {recorder.seconds / requests * 1000:.2f} ms")  # fmt: skip


def main() -> None:
    if sys.argv[1:] == ["loop"]:
        return loop()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    client = Client()
    url = f"/hooks/alertmanager/{KEY}/"
    group = f"profile-{uuid.uuid4()}"
    client.post(url, payload(n, group), content_type="application/json")  # opens the group's incident
    recorder = ShapeRecorder()
    with recorder:
        start = time.perf_counter()
        response = client.post(url, payload(n, group), content_type="application/json")
        total = time.perf_counter() - start
    assert response.status_code == 200, response.content
    print(f"{n} alerts joining an open incident: {total * 1000:.1f} ms, {recorder.count} queries, "
          f"database {recorder.seconds * 1000:.1f} ms")  # fmt: skip
    for shape, times in sorted(recorder.by_shape.items(), key=lambda kv: -sum(kv[1])):
        print(f"{len(times):4d} × {sum(times) * 1000:7.1f} ms  {shape}")
    profile = cProfile.Profile()
    profile.enable()
    client.post(url, payload(n, group), content_type="application/json")
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
