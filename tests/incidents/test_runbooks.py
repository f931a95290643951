from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError
from django.utils import timezone

from incidents import services
from incidents.models import IncidentRunbook, Runbook, RunbookVersion
from incidents.response import incident_response_prepare
from incidents.runbooks import rendering, selectors
from incidents.runbooks import services as runbook_services
from tests.conftest import queued_task_names
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.incidents.response_helpers import active_html, attach_alert
from tests.oncall.factories import UserFactory


@pytest.fixture
def author(db):
    return UserFactory(username="author")


def _runbook(service, author, **kwargs):
    defaults = {"title": "High latency", "body": "1. Check the dashboard\n2. Scale out", "alert_name": ""}
    defaults.update(kwargs)
    return runbook_services.runbook_create(service=service, author=author, **defaults)


def test_runbook_create_writes_version_one_with_author_and_note(service, author):
    runbook = _runbook(service, author, change_note="Written after the first outage")

    version = runbook.current_version
    assert version.number == 1
    assert version.author == author
    assert version.change_note == "Written after the first outage"
    assert runbook.reviewed_by == author
    assert runbook.slug == "checkout-high-latency"


def test_runbook_edit_numbers_versions_and_keeps_old_ones(service, author):
    runbook = _runbook(service, author)
    editor = UserFactory(username="editor")

    second = runbook_services.runbook_edit(runbook=runbook, body="1. Roll back", change_note="simpler", author=editor)
    same = runbook_services.runbook_edit(runbook=runbook, body="1. Roll back", change_note="again", author=editor)

    assert second.number == 2
    assert second.author == editor
    assert same.pk == second.pk  # the same body is not a new version
    assert list(runbook.versions.order_by("number").values_list("number", "body")) == [
        (1, "1. Check the dashboard\n2. Scale out"),
        (2, "1. Roll back"),
    ]
    runbook.refresh_from_db()
    assert runbook.current_version == second


def test_runbook_version_number_is_unique_per_runbook(service, author):
    runbook = _runbook(service, author)
    with pytest.raises(IntegrityError):
        RunbookVersion.objects.create(runbook=runbook, number=1, body="dup", created_at=timezone.now())


def test_render_runbook_removes_scripts_event_handlers_and_javascript_links():
    body = (
        "# Restart\n<script>alert(1)</script>\n"
        '<img src=x onerror="alert(2)">\n'
        '[click](javascript:alert(3)) and <a href="javascript:alert(4)" onclick="alert(5)">raw</a>\n'
        "[dashboard](https://grafana.example.com/d/1)"
    )
    html = rendering.render_runbook(body)

    assert active_html(html) == []
    assert active_html('<a href="javascript:x()" onclick="y()">sanity check of the checker</a>') != []
    assert "<h1>Restart</h1>" in html
    assert '<a href="https://grafana.example.com/d/1" rel="noopener noreferrer nofollow">dashboard</a>' in html


def test_runbooks_matching_by_alert_name_and_by_runbook_url(service, author):
    by_name = _runbook(service, author, title="Latency", alert_name="HighLatency")
    by_url = _runbook(
        ServiceFactory(), author, title="Disk full", source_url="https://wiki.example.com/runbooks/disk-full"
    )
    by_slug = _runbook(service, author, title="Queue", alert_name="QueueBacklogTooLongForUs")
    _runbook(service, author, title="General")  # only when nothing matches the alerts
    _runbook(service, author, title="Other alert", alert_name="SomethingElse")
    incident = IncidentFactory(service=service)
    attach_alert(incident, alertname="HighLatency")
    attach_alert(incident, alertname="DiskFull", runbook_url="https://wiki.example.com/runbooks/disk-full/")
    attach_alert(incident, alertname="Queue", runbook_url=f"https://firebreak.example.com/runbooks/{by_slug.slug}/")

    matches = {m.runbook.pk: m.matched_by for m in selectors.runbooks_matching(incident=incident)}

    assert matches == {by_name.pk: "alert_name", by_url.pk: "runbook_url", by_slug.pk: "runbook_url"}


def test_runbooks_matching_falls_back_to_the_services_general_runbooks(service, author):
    general = _runbook(service, author, title="General")
    _runbook(service, author, title="Latency", alert_name="HighLatency")
    incident = IncidentFactory(service=service)

    assert [(m.runbook, m.matched_by) for m in selectors.runbooks_matching(incident=incident)] == [(general, "service")]


def test_declared_incident_records_the_runbook_version_responders_saw(service, author, responder):
    runbook = _runbook(service, author, title="Latency", alert_name="HighLatency")
    incident = services.incident_declare(title="Slow", severity="P2", service=service, actor=responder)
    attach_alert(incident, alertname="HighLatency")

    incident_response_prepare(incident_id=incident.pk)
    runbook_services.runbook_edit(runbook=runbook, body="new steps", change_note="later", author=author)
    incident_response_prepare(incident_id=incident.pk)  # twice: still the version first shown

    link = IncidentRunbook.objects.get(incident=incident)
    assert link.version.number == 1
    assert link.matched_by == "alert_name"


def test_declare_queues_the_response_task_after_commit(service, responder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.incident_declare(title="Slow", severity="P3", service=service, actor=responder)
    # the response task is queued once, after commit (the escalation engine queues its first step too)
    assert queued_task_names(callbacks).count("incidents.response.prepare_incident_response_task") == 1


def test_runbook_is_stale_after_90_days_without_review(service, author):
    with time_machine.travel(timezone.now() - timedelta(days=91), tick=False):
        old = _runbook(service, author, title="Old")
    fresh = _runbook(service, author, title="Fresh")

    stale = selectors.runbooks_stale()

    assert [row["id"] for row in stale] == [old.pk]
    assert stale[0]["reasons"] == ["not reviewed for 90 days"]
    runbook_services.runbook_mark_reviewed(runbook=old, actor=author)
    assert selectors.runbooks_stale() == []
    assert fresh.pk not in [row["id"] for row in selectors.runbooks_stale()]


def test_runbook_is_stale_when_its_service_had_an_incident_since_the_last_edit(service, author):
    runbook = _runbook(service, author)
    IncidentFactory(service=service, declared_at=timezone.now() + timedelta(minutes=1))
    IncidentFactory(service=ServiceFactory(), declared_at=timezone.now() + timedelta(minutes=1))  # elsewhere

    stale = selectors.runbooks_stale(team_id=service.team_id)

    assert [(row["id"], row["reasons"]) for row in stale] == [(runbook.pk, ["an incident since the last edit"])]
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        runbook_services.runbook_edit(runbook=runbook, body="updated after it", change_note="lessons", author=author)
        assert selectors.runbooks_stale() == []


def test_practice_incidents_do_not_make_a_runbook_stale(service, author):
    _runbook(service, author)
    IncidentFactory(service=service, declared_at=timezone.now() + timedelta(minutes=1), is_practice=True)

    assert selectors.runbooks_stale() == []
    assert Runbook.objects.count() == 1


def test_sweep_prepares_recent_open_incidents_whose_task_was_lost(service, author):
    from incidents.response import incidents_response_sweep

    _runbook(service, author, title="General")
    recent = IncidentFactory(service=service, declared_at=timezone.now() - timedelta(minutes=5))
    old = IncidentFactory(service=service, declared_at=timezone.now() - timedelta(hours=2))
    closed = IncidentFactory(
        service=service,
        declared_at=timezone.now() - timedelta(minutes=5),
        status="cancelled",
        closure_reason="cancelled",
    )

    assert incidents_response_sweep() == [recent.pk]
    assert incidents_response_sweep() == [recent.pk]  # again: nothing new recorded
    assert list(IncidentRunbook.objects.values_list("incident_id", flat=True)) == [recent.pk]
    assert old.pk != closed.pk


def test_runbook_version_number_starts_at_one(service, author):
    runbook = _runbook(service, author)
    with pytest.raises(IntegrityError):
        RunbookVersion.objects.create(runbook=runbook, number=0, body="zero", created_at=timezone.now())


def test_a_runbook_is_attached_once_per_incident(service, author):
    runbook = _runbook(service, author)
    incident = IncidentFactory(service=service)
    IncidentRunbook.objects.create(
        incident=incident,
        runbook=runbook,
        version=runbook.current_version,
        matched_by="service",
        attached_at=timezone.now(),
    )
    with pytest.raises(IntegrityError):
        IncidentRunbook.objects.create(
            incident=incident, runbook=runbook, version=runbook.current_version, matched_by="service",
            attached_at=timezone.now(),
        )  # fmt: skip
