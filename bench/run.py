"""`make bench`: load the data of BENCH_SCALE if the database does not hold it yet, run every benchmark, print
the table (and write it with the machine and load to bench/last-run.md, git-ignored)."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import generate
from bench.common import machine, table, uptime
from incidents.models import Incident  # noqa: E402


def main() -> None:
    scale = generate.scale_from_env()
    have = Incident.objects.order_by().count()
    # the benchmarks themselves add a few incidents (ingestion opens one per alert group): tolerate 5 %
    if not scale.incidents <= have <= scale.incidents * 1.05 or os.environ.get("BENCH_REGENERATE"):
        print(f"loading scale {scale.name} ({scale.incidents:,} incidents; the database has {have:,})", file=sys.stderr)
        generate.main_for(scale)
    from bench.ingest import bench_ingestion
    from bench.queries import ALL

    wanted = sys.argv[1:]
    rows, loads = [], []
    started = time.perf_counter()
    for fn in [bench_ingestion, *ALL]:
        if wanted and not any(w in fn.__name__ for w in wanted):
            continue
        load = uptime()
        loads.append(f"{fn.__name__}: {load}")
        print(f"running {fn.__name__} — {load}", file=sys.stderr)
        new = fn()
        rows += new
        print(table(new), file=sys.stderr)  # as it comes: a long run that is stopped still shows what it measured
    info = machine()
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, scale {scale.name}: {info['incidents']:,} incidents, "
        f"{info['alerts']:,} alerts (estimates); {info['cpus']} CPUs, {info['mem_gb']} GB, {info['postgres']}; "
        f"{time.perf_counter() - started:.0f} s",
        "",
        table(rows),
        "",
        *(f"- {r.bench} / {r.case}: {r.notes}" for r in rows if r.notes),
        "",
        "Machine load (uptime) before each benchmark:",
        *(f"- {line}" for line in loads),
    ]
    text = "\n".join(lines)
    print(text)
    Path(__file__).with_name("last-run.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
