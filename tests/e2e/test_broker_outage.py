"""The broker (a private Redis) dies while the worker holds messages, and comes back: the same worker, web and
beat processes carry on by themselves; alerts are answered fast during the outage and every page goes out once
after it."""

import math
import sys
import time
from collections import Counter

import pytest
from celery import Celery

from incidents.alerting import services as alerting
from incidents.models import Escalation
from oncall.models import Notification
from tests.e2e.conftest import wait_for
from tests.e2e.test_stack import firing, on_call_service, pages_to, post
from tests.oncall.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _client(stack) -> Celery:
    client = Celery("firebreak-e2e", broker=stack.env["CELERY_BROKER_URL"], set_as_current=False)
    client.conf.task_serializer = "json"
    return client


def test_a_worker_holding_a_message_rides_out_a_broker_outage_and_consumes_again(stack):
    stack.start_redis()
    stack.start_worker()
    worker = stack.processes.running["worker"]
    log = lambda: stack.processes.log("worker")  # noqa: E731
    assert wait_for(lambda: " ready." in log(), timeout=60), log()
    with _client(stack) as client:
        # an escalation's next step: a countdown message the worker holds, unacknowledged, until it is due
        client.send_task("incidents.tasks.sweep_escalations", countdown=3600)
        assert wait_for(lambda: "sweep_escalations[" in log(), timeout=30), log()

    stack.processes.stop("redis", kill=True)
    assert wait_for(lambda: "Connection to broker lost" in log(), timeout=30), log()
    assert not wait_for(lambda: worker.poll() is not None, timeout=10), log()  # still running, retrying
    assert "Unrecoverable error" not in log()

    stack.start_redis()
    assert wait_for(lambda: log().count("Connected to redis") >= 2, timeout=60), log()
    with _client(stack) as client:
        client.send_task("incidents.tasks.remind_overdue_status_updates")
        assert wait_for(lambda: "remind_overdue_status_updates[" in log() and "succeeded" in log(), timeout=60), log()
    assert worker.poll() is None


def _alert(number: int, group: str) -> dict:
    """One firing alert of its own fingerprint; alerts of one group share an incident."""
    payload = firing(fingerprint=f"outage-{number}")
    payload["groupKey"] = f'{{}}:{{alertname="HighErrorRate", group="{group}"}}'
    payload["groupLabels"] = {"alertname": "HighErrorRate", "group": group}
    payload["alerts"][0]["labels"] = {
        "alertname": "HighErrorRate",
        "service": "checkout",
        "group": group,
        "n": str(number),
    }
    return payload


def _timed_post(url: str, payload: dict) -> tuple[int, float]:
    started = time.perf_counter()
    status = post(url, payload)
    return status, time.perf_counter() - started


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def test_broker_outage_with_escalations_in_flight_answers_alerts_fast_and_pages_each_once_after(stack):
    """50 escalations hold their next step (due in a minute) in the worker when Redis dies; for 60 s, 200 alerts
    arrive (40 new incidents); then Redis returns. Nobody restarts anything."""
    backup = UserFactory(username="backup", email="backup@example.com")
    service = on_call_service(second_step_user=backup, delay=1)
    _, key = alerting.integration_create(service=service, kind="alertmanager")
    url = f"{stack.url}/hooks/alertmanager/{key}/"
    stack.start_redis()
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    processes = {name: stack.processes.running[name] for name in ("web", "worker", "beat")}
    worker_log = lambda: stack.processes.log("worker")  # noqa: E731

    in_flight = 50
    before = []
    for number in range(in_flight):
        status, seconds = _timed_post(url, _alert(number, group=f"held-{number}"))
        assert status in (200, 202)
        before.append(seconds)
    # every first step has paged, and the worker has received every next step (a countdown message it holds)
    assert wait_for(lambda: len(pages_to(stack.smtp, "oncall@example.com")) == in_flight, timeout=120), worker_log()
    assert wait_for(lambda: worker_log().count("run_escalation_task[") >= 2 * in_flight, timeout=60), worker_log()
    assert Escalation.objects.filter(step_index=1, status="running").count() == in_flight

    stack.processes.stop("redis", kill=True)  # the broker dies
    outage_started = time.monotonic()
    alerts, groups, latencies = 200, 40, []
    for number in range(alerts):
        status, seconds = _timed_post(url, _alert(1000 + number, group=f"outage-{number % groups}"))
        assert status in (200, 202)
        latencies.append(seconds)
        time.sleep(max(0.0, outage_started + (number + 1) * 55 / alerts - time.monotonic()))  # spread over 55 s
    time.sleep(max(0.0, outage_started + 60 - time.monotonic()))
    assert all(process.poll() is None for process in processes.values()), worker_log()
    p99 = _p99(latencies)
    summary = (
        f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; broker up: p99 {_p99(before) * 1000:.0f} ms"
    )
    sys.stdout.write(summary + "\n")  # shown with -rP
    assert p99 < 0.1, summary

    stack.start_redis()  # the broker returns, empty: the sweeps queue what was lost
    expected_oncall, expected_backup = in_flight + groups, in_flight + groups
    done = lambda: (  # noqa: E731
        len(pages_to(stack.smtp, "oncall@example.com")) >= expected_oncall
        and len(pages_to(stack.smtp, "backup@example.com")) >= expected_backup
    )
    assert wait_for(done, timeout=240, interval=1), worker_log()
    stack.smtp.wait_for(len(stack.smtp.messages) + 1, timeout=5)  # nothing more trickles in

    assert len(pages_to(stack.smtp, "oncall@example.com")) == expected_oncall
    assert len(pages_to(stack.smtp, "backup@example.com")) == expected_backup
    keys = Counter(message["X-Firebreak-Notification"] for _, message in stack.smtp.messages)
    assert [key for key, count in keys.items() if count > 1] == []
    assert Notification.objects.filter(payload__kind="page").count() == expected_oncall + expected_backup
    assert all(process.poll() is None for process in processes.values())  # the same processes, never restarted
    assert "Unrecoverable error" not in worker_log()
