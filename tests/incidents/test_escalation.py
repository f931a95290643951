"""The escalation engine: who is paged, when, once; stopping; gaps; repeats; lost tasks; ack links."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from incidents import services, tasks
from incidents.models import Escalation, Incident
from incidents.services import escalation as engine
from oncall.models import EscalationPolicy, EscalationStep, EscalationTarget, Notification, TeamMembership
from oncall.services import rotation_generate
from tests.conftest import queued_task_names
from tests.incidents.alerting_helpers import alertmanager_url, make_integration, post_json, reference
from tests.incidents.factories import ServiceFactory
from tests.oncall.conftest import NOW
from tests.oncall.factories import ContactMethodFactory, UserFactory


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def setup(make_rotation, clock):
    """A daily rotation (three members), a policy: 1) the current holder, 5 min; 2) the backup user, 10 min."""
    rotation = make_rotation(3, unit="daily", handoff_time=NOW.time().replace(hour=9), timezone="UTC")
    rotation_generate(rotation=rotation, now=NOW)
    backup = UserFactory(username="backup", email="backup@example.com")
    policy = EscalationPolicy.objects.create(team=rotation.team, name="Default", repeat=0)
    first = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    EscalationTarget.objects.create(step=first, kind="rotation_current", rotation=rotation)
    second = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=10)
    EscalationTarget.objects.create(step=second, kind="user", user=backup)
    service = ServiceFactory(team=rotation.team, escalation_policy=policy)
    holder = rotation.shifts.get(period__contains=NOW).user
    return {"service": service, "policy": policy, "holder": holder, "backup": backup, "rotation": rotation}


def declare(service, severity="P1", **extra):
    return services.incident_declare(title="Checkout down", severity=severity, service=service, actor=None, **extra)


def pages():
    return Notification.objects.filter(payload__kind="page").order_by("id")


def run(incident, token=None):
    escalation = Escalation.objects.get(incident=incident)
    return engine.escalation_run(escalation_id=escalation.pk, token=token)


def test_declare_starts_escalation_after_commit(setup, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        incident = declare(setup["service"])
    escalation = Escalation.objects.get(incident=incident)
    assert escalation.status == "running"
    assert escalation.policy == setup["policy"]
    assert escalation.next_run_at == NOW
    # the first step is queued only once the incident is committed (other listeners queue their own work)
    assert queued_task_names(callbacks).count("incidents.tasks.run_escalation_task") == 1


def test_step_one_pages_the_current_holder_once(setup, clock):
    incident = declare(setup["service"])
    escalation = run(incident)
    stale_token = None
    assert [n.user for n in pages()] == [setup["holder"]]
    page = pages().get()
    assert page.subject == f"[P1] {incident.ref} Checkout down"
    assert "/ack/" in page.body
    assert 'href="http://127.0.0.1:8000/ack/' in page.payload["html"]  # the HTML part has the button too
    assert escalation.step_index == 1
    assert escalation.next_run_at == NOW + timedelta(minutes=5)
    assert incident.events.filter(kind="paged").count() == 1

    stale_token = str(escalation.token)
    run(incident)  # a duplicate delivery before the step is due
    run(incident, token="00000000-0000-0000-0000-000000000000")  # a superseded task
    assert pages().count() == 1

    clock.shift(timedelta(minutes=5))
    run(incident, token=stale_token)  # the scheduled task for step two
    assert [n.user for n in pages()] == [setup["holder"], setup["backup"]]
    assert incident.events.filter(kind="paged").count() == 2


def test_page_goes_to_every_contact_method(setup):
    ContactMethodFactory(user=setup["holder"], kind="email", address="pager@example.com", position=0)
    ContactMethodFactory(user=setup["holder"], kind="email", address="home@example.com", position=1)
    incident = declare(setup["service"])
    run(incident)
    assert sorted(pages().values_list("address", flat=True)) == ["home@example.com", "pager@example.com"]


def test_acknowledge_stops_escalation(setup, clock):
    incident = declare(setup["service"])
    run(incident)
    services.incident_acknowledge(incident=incident, actor=setup["holder"])
    escalation = Escalation.objects.get(incident=incident)
    assert (escalation.status, escalation.stop_reason) == ("stopped", "acknowledged")
    clock.shift(timedelta(minutes=30))
    run(incident)
    assert pages().count() == 1  # the backup is never paged
    assert incident.events.filter(kind="escalation_stopped").count() == 1


def test_resolve_stops_escalation(setup):
    incident = declare(setup["service"])
    services.incident_resolve(incident=incident, actor=None)
    assert Escalation.objects.get(incident=incident).status == "stopped"
    run(incident)
    assert pages().count() == 0


def test_gap_moves_to_the_next_step_at_once(make_rotation, clock):
    empty = make_rotation(0, unit="daily", timezone="UTC")  # nobody: gap shifts
    rotation_generate(rotation=empty, now=NOW)
    backup = UserFactory(username="backup2")
    policy = EscalationPolicy.objects.create(team=empty.team, name="Gappy")
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=30)
    EscalationTarget.objects.create(step=step, kind="rotation_current", rotation=empty)
    step = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=30)
    EscalationTarget.objects.create(step=step, kind="user", user=backup)
    incident = declare(ServiceFactory(team=empty.team, escalation_policy=policy))

    escalation = run(incident)

    assert [n.user for n in pages()] == [backup]  # paged now, not after 30 minutes
    assert incident.events.filter(kind="escalation_gap").count() == 1
    assert escalation.step_index == 2


def test_repeat_then_exhausted_tells_the_managers(make_rotation, clock):
    rotation = make_rotation(1, unit="daily", timezone="UTC")
    rotation_generate(rotation=rotation, now=NOW)
    policy = EscalationPolicy.objects.create(team=rotation.team, name="Twice", repeat=1)
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    EscalationTarget.objects.create(step=step, kind="rotation_current", rotation=rotation)
    incident = declare(ServiceFactory(team=rotation.team, escalation_policy=policy))
    for _ in range(3):
        run(incident)
        clock.shift(timedelta(minutes=5))
    escalation = Escalation.objects.get(incident=incident)
    assert pages().count() == 2  # the step and its repeat
    assert escalation.status == "exhausted"
    manager = TeamMembership.objects.get(team=rotation.team, role="manager").user
    assert Notification.objects.filter(payload__kind="escalation_exhausted", user=manager).count() == 1
    assert incident.events.filter(kind="escalation_exhausted").count() == 1


def test_service_without_policy_pages_team_managers(make_rotation, clock):
    rotation = make_rotation(1)
    incident = declare(ServiceFactory(team=rotation.team))
    run(incident)
    manager = TeamMembership.objects.get(team=rotation.team, role="manager").user
    assert [n.user for n in pages()] == [manager]


def test_sweep_requeues_a_lost_step(setup, clock, django_capture_on_commit_callbacks):
    incident = declare(setup["service"])
    assert tasks.sweep_escalations() == 0  # due now, its own task is on the way
    clock.shift(timedelta(minutes=1))
    assert tasks.sweep_escalations() == 1  # the task was lost: queued again with the current token
    run(incident, token=str(Escalation.objects.get(incident=incident).token))
    assert pages().count() == 1


def test_ack_link_get_changes_nothing_post_acknowledges(setup, client):
    incident = declare(setup["service"])
    url = engine.ack_url(incident=incident, user=setup["holder"]).split("8000", 1)[-1]
    assert client.get(url).status_code == 200
    assert Incident.objects.get(pk=incident.pk).status == "triggered"
    response = client.post(url)
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert incident.commander == setup["holder"]
    assert Escalation.objects.get(incident=incident).status == "stopped"


def test_ack_link_tampered_is_404(setup, client):
    incident = declare(setup["service"])
    url = engine.ack_url(incident=incident, user=setup["holder"]).split("8000", 1)[-1]
    assert client.post(url[:-3] + "xyz/").status_code == 404
    assert client.get(reverse("incident-ack", args=["garbage"])).status_code == 404


def test_alert_opens_incident_and_pages(setup, client):
    integration, key = make_integration(setup["service"])
    response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    assert response.status_code in (200, 202)
    incident = Incident.objects.get()
    run(incident)
    assert [n.user for n in pages()] == [setup["holder"]]


def test_thousand_identical_posts_make_one_alert_one_incident_one_page(setup, client):
    from incidents.alerting import services as alerting
    from incidents.models import Alert

    _, key = alerting.integration_create(service=setup["service"], kind="alertmanager", rate_limit_per_minute=5000)
    payload = reference("alertmanager-firing.json")
    statuses = {post_json(client, alertmanager_url(key), payload).status_code for _ in range(1000)}
    assert statuses == {200}
    assert Alert.objects.get().repeat_count == 1000
    incident = Incident.objects.get()
    for _ in range(3):  # the first step's task delivered three times
        run(incident)
    assert pages().count() == 1


@pytest.fixture
def layered(make_rotation, clock):
    """Primary and secondary daily rotations of one team and a policy [primary 5 min, secondary 10 min,
    managers 15 min], repeated once."""
    primary = make_rotation(2, unit="daily", timezone="UTC", layer="primary")
    secondary = make_rotation(2, team=primary.team, unit="daily", timezone="UTC", layer="secondary")
    rotation_generate(rotation=primary, now=NOW)
    rotation_generate(rotation=secondary, now=NOW)
    policy = EscalationPolicy.objects.create(team=primary.team, name="Layers", repeat=1)
    for position, (delay, kind, rotation) in enumerate(
        [(5, "rotation_current", primary), (10, "rotation_current", secondary), (15, "team_managers", None)]
    ):
        step = EscalationStep.objects.create(policy=policy, position=position, delay_minutes=delay)
        EscalationTarget.objects.create(step=step, kind=kind, rotation=rotation)
    who = {
        "primary": primary.shifts.get(period__contains=NOW).user,
        "secondary": secondary.shifts.get(period__contains=NOW).user,
        "manager": TeamMembership.objects.get(team=primary.team, role="manager").user,
    }
    return ServiceFactory(team=primary.team, escalation_policy=policy), who


def _tick(incident, clock, minutes):
    """Run the engine every minute for `minutes` minutes, as the scheduled tasks and the sweep would."""
    for _ in range(minutes + 1):
        run(incident, token=str(Escalation.objects.get(incident=incident).token))
        clock.shift(timedelta(minutes=1))


def test_never_acknowledged_pages_at_0_5_15_then_repeats(layered, clock):
    service, who = layered
    incident = declare(service)
    _tick(incident, clock, 61)
    paged = [(int((n.created_at - NOW).total_seconds() // 60), n.user) for n in pages()]
    assert paged == [
        (0, who["primary"]),
        (5, who["secondary"]),
        (15, who["manager"]),
        (30, who["primary"]),  # the repeat
        (35, who["secondary"]),
        (45, who["manager"]),
    ]
    assert Escalation.objects.get(incident=incident).status == "exhausted"  # 15 minutes after the last step
    assert pages().count() == 6


def test_acknowledged_at_3_minutes_pages_nobody_else(layered, clock):
    service, who = layered
    incident = declare(service)
    _tick(incident, clock, 2)
    services.incident_acknowledge(incident=incident, actor=who["primary"])
    _tick(incident, clock, 60)
    assert [n.user for n in pages()] == [who["primary"]]


def test_ack_link_works_once_and_expires(setup, client, clock):
    first = declare(setup["service"])
    url = engine.ack_url(incident=first, user=setup["holder"]).split("8000", 1)[-1]
    assert client.post(url).status_code == 200
    events = first.events.count()
    again = client.post(url)
    assert b"Already acknowledged" in again.content or b"Acknowledged by" in again.content
    assert first.events.count() == events  # the second use changes nothing

    second = declare(setup["service"])
    old = engine.ack_url(incident=second, user=setup["holder"]).split("8000", 1)[-1]
    clock.shift(timedelta(days=7, minutes=1))
    assert client.post(old).status_code == 404
    second.refresh_from_db()
    assert second.status == "triggered"


def test_a_page_that_finally_fails_is_on_the_incident_timeline(setup, settings):
    settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS = 1
    setup["holder"].email = ""
    setup["holder"].save()
    incident = declare(setup["service"])
    run(incident)
    page = pages().get()
    from oncall.services import notification_deliver

    notification_deliver(notification_id=page.pk)
    page.refresh_from_db()
    assert page.status == "failed"
    event = incident.events.get(kind="notification_failed")
    assert setup["holder"].username in event.message
    assert "no e-mail address" in event.message


def test_escalation_uses_the_policy_in_the_database_not_a_stale_object(setup):
    from incidents.models import Service

    stale = Service.objects.get(pk=setup["service"].pk)
    stale.escalation_policy = None  # an old in-memory copy, from before the policy was set
    incident = declare(stale)
    assert Escalation.objects.get(incident=incident).policy == setup["policy"]


def test_practice_incident_pages_marked_as_practice(setup):
    incident = declare(setup["service"], is_practice=True)
    run(incident)
    page = pages().get()
    assert page.subject.startswith("[PRACTICE] [P1]")
    assert page.body.startswith("PRACTICE incident")


# --- acknowledge racing the escalation task (two connections) -----------------------------------------------------


def _waiting_on_locks() -> int:
    """Backends of the test database waiting for a row lock (another connection holds it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _until(predicate, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _in_thread(target, errors: list, *args):
    import threading

    from django.db import connection

    def body():
        try:
            target(*args)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_escalation_run_and_acknowledge_racing_take_the_same_lock_order(transactional_db):
    """The step task pages while an acknowledge arrives: the step task holds the escalation row and is inserting
    its page; the acknowledge holds the incident and wants the escalation row to stop it. With one lock order
    (incident, then escalation) one waits for the other; with two orders PostgreSQL kills one as a deadlock."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import transaction

    paged, responder = UserFactory(username="paged"), UserFactory(username="responder")
    policy = EscalationPolicy.objects.create(team=ServiceFactory().team, name="One step")
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    EscalationTarget.objects.create(step=step, kind="user", user=paged)
    incident = declare(ServiceFactory(team=policy.team, escalation_policy=policy))
    escalation = Escalation.objects.get(incident=incident)

    # a third connection holds the paged user's row, so the step task stops right at its page (the FK check of
    # the notification row) with whatever it has locked by then
    locked, release, errors = threading.Event(), threading.Event(), []

    def hold_user():
        with transaction.atomic():
            get_user_model().objects.select_for_update().get(pk=paged.pk)
            locked.set()
            release.wait(timeout=30)

    holder = _in_thread(hold_user, errors)
    assert locked.wait(timeout=10)
    step_task = _in_thread(lambda: engine.escalation_run(escalation_id=escalation.pk), errors)
    assert _until(lambda: _waiting_on_locks() == 1)
    ack = _in_thread(lambda: services.incident_acknowledge(incident=incident, actor=responder), errors)
    assert _until(lambda: _waiting_on_locks() == 2)  # the acknowledge waits too
    release.set()
    for thread in (holder, step_task, ack):
        thread.join(timeout=30)

    assert errors == []  # no deadlock, no error on either side
    incident.refresh_from_db()
    assert (incident.status, incident.commander) == ("acknowledged", responder)
    assert incident.events.filter(kind="acknowledged").count() == 1
    escalation.refresh_from_db()
    assert (escalation.status, escalation.stop_reason) == ("stopped", "acknowledged")
    page = pages().get()  # the step ran first; nothing was paged after the acknowledgement
    assert page.user == paged
    assert page.created_at <= incident.acknowledged_at
