"""Every task in the source tree and every beat entry is registered on a worker started as documented
(`celery -A config worker`): the app is booted in a fresh process the way the worker boots it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["config", "incidents", "metrics", "oncall", "postmortems"]

# What `celery -A config worker` does before it consumes: find the app in `config`, then the loader's
# import_default_modules() (Django setup and autodiscovery, on the import_modules signal). No other import.
BOOT_LIKE_THE_WORKER = """
import json
from celery.app.utils import find_app
app = find_app("config")
app.loader.import_default_modules()
print(json.dumps(sorted(app.tasks)))
"""


def _decorated_task_name(node: ast.FunctionDef, module: str) -> str | None:
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
        if name != "shared_task" and not (name == "task" and isinstance(target, ast.Attribute)):
            continue
        for keyword in call.keywords if call else []:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                return keyword.value.value
        return f"{module}.{node.name}"
    return None


def tasks_in_source() -> set[str]:
    """Names of every function decorated with @shared_task (or @app.task) in the project's packages."""
    names = set()
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    name = _decorated_task_name(node, module)
                    if name:
                        names.add(name)
    return names


def beat_tasks() -> set[str]:
    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def test_the_source_scan_finds_the_tasks_of_nested_packages():
    found = tasks_in_source()
    assert "incidents.automation.tasks.run_automation_task" in found
    assert "incidents.alerting.tasks.open_alert_incident_task" in found
    assert "oncall.tasks.deliver_notification_task" in found


def test_a_worker_booted_as_documented_registers_every_task_and_every_beat_entry():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "true"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", BOOT_LIKE_THE_WORKER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    registered = set(json.loads(result.stdout.strip().splitlines()[-1]))

    assert sorted(tasks_in_source() - registered) == []
    assert sorted(beat_tasks() - registered) == []
