"""Acknowledging right after declaring, while the real worker runs the first escalation step: 200 incidents
from 8 concurrent API clients (token auth) on gunicorn, a Celery worker and beat on Redis, PostgreSQL.

Every request answers 2xx, every incident is acknowledged once and has a commander, and no page is created
after its acknowledgement (the step either commits first or sees the acknowledgement and stops)."""

import json
import random
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.db.models import Count, Q
from rest_framework.authtoken.models import Token

from incidents.models import Escalation, Incident
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Notification
from tests.e2e.conftest import wait_for
from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import TeamFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
CLIENTS, PER_CLIENT = 8, 25


def _services() -> list[str]:
    """Four services, each with a policy: page `oncall` at once, then `backup` after a minute (the shortest
    delay a step may have), so the first step's task runs the moment each incident is committed."""
    team = TeamFactory(slug="payments")
    oncall = UserFactory(username="oncall", email="oncall@example.com")
    backup = UserFactory(username="backup", email="backup@example.com")
    policy = EscalationPolicy.objects.create(team=team, name="Fast")
    for position, user in enumerate([oncall, backup]):
        step = EscalationStep.objects.create(policy=policy, position=position, delay_minutes=1)
        EscalationTarget.objects.create(step=step, kind="user", user=user)
    return [ServiceFactory(team=team, slug=f"svc-{n}", escalation_policy=policy).slug for n in range(4)]


def _call(url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")[:500]}


def test_200_incidents_acknowledged_within_half_a_second_of_declaring_never_fail(stack):
    slugs = _services()
    tokens = [
        Token.objects.create(user=UserFactory(username=f"responder{n}", groups=["Responders"])).key
        for n in range(CLIENTS)
    ]
    stack.start_redis()
    stack.start_web()
    stack.start_worker()
    stack.start_beat()

    failures: list = []
    acknowledged: dict[str, str] = {}  # ref -> username of the client that acknowledged it
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        rng = random.Random(number)  # noqa: S311 - delays, not secrets
        start.wait()
        for index in range(PER_CLIENT):
            status, body = _call(
                f"{stack.url}/api/v1/incidents/",
                tokens[number],
                {"title": f"Race {number}-{index}", "severity": "P1", "service": slugs[index % len(slugs)]},
            )
            if status != 201:
                with lock:
                    failures.append(("declare", status, body))
                continue
            time.sleep(rng.uniform(0, 0.5))
            ack_status, ack_body = _call(f"{stack.url}/api/v1/incidents/{body['ref']}/acknowledge/", tokens[number])
            with lock:
                if ack_status != 200:
                    failures.append(("acknowledge", body["ref"], ack_status, ack_body))
                else:
                    acknowledged[body["ref"]] = f"responder{number}"

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert failures == [], failures[:5]
    assert len(acknowledged) == CLIENTS * PER_CLIENT

    import redis

    queue = redis.Redis(port=stack.redis_port)
    # the worker has drained every step and delivery it was given (and any step still due would be a bug)
    assert wait_for(lambda: queue.llen("celery") == 0, timeout=60), stack.processes.log("worker")
    time.sleep(1)

    incidents = Incident.objects.select_related("commander").annotate(
        acks=Count("events", filter=Q(events__kind="acknowledged"))
    )
    assert incidents.count() == CLIENTS * PER_CLIENT
    for incident in incidents:
        assert incident.status == "acknowledged", incident.ref
        assert incident.acks == 1, incident.ref
        assert incident.commander is not None, incident.ref
        assert incident.commander.username == acknowledged[incident.ref]
        assert incident.acknowledged_at is not None
    assert not Escalation.objects.filter(status="running").exists()
    assert set(Escalation.objects.values_list("stop_reason", flat=True)) == {"acknowledged"}

    acknowledged_at = dict(Incident.objects.values_list("ref", "acknowledged_at"))
    pages = list(Notification.objects.filter(payload__kind="page").values_list("payload__incident", "created_at"))
    late = [(ref, created) for ref, created in pages if created > acknowledged_at[ref]]
    assert late == []
    assert pages, "the worker never got to a step before its acknowledgement: nothing raced"
    assert {ref for ref, _ in pages} <= set(acknowledged_at)
    # only first steps: every acknowledgement came long before a second step was due
    assert not Notification.objects.filter(payload__kind="page", user__username="backup").exists()
