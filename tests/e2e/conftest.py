"""Real processes for end-to-end tests: an SMTP server on localhost and a Celery worker on Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

REDIS_URL = os.environ.get("FIREBREAK_E2E_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def _redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.messages


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


def _database_url() -> str:
    settings = connection.settings_dict
    host = settings["HOST"] or ""
    user = quote(settings["USER"] or "")
    password = quote(settings["PASSWORD"] or "")
    if host.startswith("/"):
        return f"postgres://{user}:{password}@/{settings['NAME']}?host={quote(host)}"
    port = settings["PORT"] or "5432"
    return f"postgres://{user}:{password}@{host}:{port}/{settings['NAME']}"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Processes:
    """Real processes of one test, stopped at the end whatever happens."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=env or os.environ.copy(), stdout=log, stderr=subprocess.STDOUT
        )
        self.running[name] = process
        return process

    def stop(self, name: str, kill: bool = False) -> None:
        process = self.running.pop(name)
        (process.kill if kill else process.terminate)()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


@pytest.fixture
def processes(tmp_path):
    group = Processes(tmp_path)
    yield group
    group.stop_all()


class Stack:
    """gunicorn + Celery worker + beat on a private Redis, the test database and a local SMTP server."""

    def __init__(self, processes: Processes, smtp, tmp_path: Path) -> None:
        self.processes = processes
        self.smtp = smtp
        self.redis_port = _free_port()
        self.web_port = _free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": _database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "FIREBREAK_BASE_URL": self.url,
        }
        self.tmp_path = tmp_path

    def start_redis(self) -> None:
        self.processes.start(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        import redis

        client = redis.Redis(port=self.redis_port, socket_connect_timeout=0.5)

        def ping() -> bool:
            try:
                return bool(client.ping())
            except Exception:  # noqa: BLE001
                return False

        assert wait_for(ping, timeout=10), self.processes.log("redis")

    def start_web(self) -> None:
        self.processes.start(
            "web",
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                "2",
                "--timeout",
                "30",
            ],
            self.env,
        )
        import urllib.request

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:  # noqa: S310
                    return response.status == 200
            except Exception:  # noqa: BLE001
                return False

        assert wait_for(healthy, timeout=30), self.processes.log("web")

    def start_worker(self, name: str = "worker") -> None:
        self.processes.start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{name}@%h",
            ],
            self.env,
        )

    def start_beat(self, name: str = "beat") -> None:
        self.processes.start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(self.tmp_path / f"{name}.pid"),
            ],
            self.env,
        )


@pytest.fixture
def stack(transactional_db, processes, smtp_server, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    return Stack(processes, smtp_server, tmp_path)


@pytest.fixture
def celery_worker_process(transactional_db, smtp_server):
    """A real `celery worker` on Redis, on the test database, e-mailing the local SMTP server."""
    if not _redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (.ci/run starts it)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
    }
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-P",
            "solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    from celery import Celery

    client = Celery("firebreak-e2e", broker=REDIS_URL, set_as_current=False)
    client.conf.task_serializer = "json"
    yield client
    process.terminate()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if os.environ.get("FIREBREAK_E2E_VERBOSE"):
        sys.stderr.write(output)


# A real HTTP peer on 127.0.0.1 for automated actions, and a real Prometheus Alertmanager (Debian package
# prometheus-alertmanager), shared with the response and receiver tests.
from tests.incidents.conftest import local_server  # noqa: E402, F401
from tests.incidents.test_receivers_e2e import _amtool, alertmanager  # noqa: E402, F401
