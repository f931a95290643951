"""A real worker, started as documented (`celery -A config worker`), knows every task: each @shared_task of the
source tree and each beat entry is registered, and an automated action of a rule runs on it end to end."""

import json
import subprocess
import sys

import pytest

from incidents.alerting import services as alerting
from incidents.models import AutomationAction, AutomationRule, AutomationRun, Incident
from tests.config.test_celery import beat_tasks, tasks_in_source
from tests.e2e.conftest import ROOT, wait_for
from tests.e2e.test_stack import firing, on_call_service, post

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _inspect_registered(stack) -> dict:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "config", "inspect", "registered", "--json", "--timeout", "5"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_running_worker_registers_every_task_of_the_source_and_every_beat_entry(stack):
    stack.start_redis()
    stack.start_worker()
    replies = {}
    assert wait_for(lambda: replies.update(_inspect_registered(stack)) or replies, timeout=60), stack.processes.log(
        "worker"
    )
    (registered,) = replies.values()  # one worker answered
    registered = {line.split(" ")[0] for line in registered}  # "name [rate_limit=...]" when options are set

    assert sorted(tasks_in_source() - registered) == []
    assert sorted(beat_tasks() - registered) == []


def test_an_automatic_rule_runs_its_action_on_a_real_worker_against_a_local_server(stack, local_server):
    service = on_call_service()
    _, key = alerting.integration_create(service=service, kind="alertmanager")
    action = AutomationAction.objects.create(
        name="Restart checkout",
        url=local_server.url("/restart"),
        payload_template='{"incident": "{{ ref }}"}',
        secret="s3cret-for-e2e",
        timeout_seconds=5,
    )
    AutomationRule.objects.create(action=action, service=service, alert_name="HighErrorRate", auto=True)
    stack.env["FIREBREAK_AUTOMATION_ALLOWED_HOSTS"] = "127.0.0.1"
    stack.env["FIREBREAK_AUTOMATION_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    stack.start_redis()
    stack.start_web()
    stack.start_worker()

    assert post(f"{stack.url}/hooks/alertmanager/{key}/", firing()) in (200, 202)
    assert wait_for(lambda: local_server.requests, timeout=60), stack.processes.log("worker")
    incident = Incident.objects.get()
    (request,) = local_server.requests
    assert (request.path, request.json()) == ("/restart", {"incident": incident.ref})
    assert request.headers["X-Firebreak-Signature"].startswith("sha256=")
    assert wait_for(lambda: AutomationRun.objects.filter(status="succeeded").exists(), timeout=30)
    run = AutomationRun.objects.get()
    assert (run.incident, run.response_code) == (incident, 200)
    assert "unregistered task" not in stack.processes.log("worker")
