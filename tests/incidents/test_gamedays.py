from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError

from incidents.gamedays.services import gameday_abort, gameday_complete, gameday_start
from incidents.models import GameDay, Incident, TeamChatSettings
from metrics.selectors import Month, monthly_metrics
from oncall.errors import DomainError
from oncall.models import Notification
from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import UserFactory

NOW = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def game_day(service, db):
    facilitator = UserFactory(username="facilitator")
    game_day = GameDay.objects.create(
        title="Checkout database failover",
        hypothesis="Checkout keeps serving within 2 minutes when the primary database fails over",
        scheduled_for=NOW,
        facilitator=facilitator,
        blast_radius="staging-like canary cell only",
        abort_criteria="error rate above 5% for 5 minutes",
    )
    game_day.services.set([service, ServiceFactory(name="Payments", slug="payments")])
    return game_day


def test_gameday_start_declares_practice_incidents_that_page_and_say_practice(frozen, game_day, service, responder):
    TeamChatSettings.objects.create(team=service.team, slack_webhook_url="https://hooks.slack.com/services/x")

    incidents = gameday_start(game_day=game_day, actor=responder, severity="P1")

    game_day.refresh_from_db()
    assert game_day.status == GameDay.Status.RUNNING
    assert game_day.started_at == NOW
    assert sorted(i.service.slug for i in incidents) == ["checkout", "payments"]
    rows = Incident.objects.filter(game_day=game_day)
    assert rows.count() == 2
    assert all(i.is_practice and i.title.startswith("[PRACTICE] ") for i in rows)
    assert all(i.channel for i in rows)  # a P1 drill gets its channel like a real one
    post = Notification.objects.get(channel="slack")
    assert post.subject.startswith("[PRACTICE] ")
    assert "[PRACTICE]" in post.body


def test_practice_incidents_are_absent_from_every_metric(frozen, game_day, responder, service):
    gameday_start(game_day=game_day, actor=responder, severity="P0")

    metrics = monthly_metrics(month=Month(2026, 11), now=NOW + timedelta(days=1))

    assert metrics.incidents == 0
    assert metrics.by_severity.get("P0", {}).get("count", 0) == 0
    assert metrics.open_at_month_end == []


def test_gameday_complete_needs_an_outcome_and_a_running_drill(frozen, game_day, responder):
    with pytest.raises(DomainError, match="planned"):
        gameday_complete(game_day=game_day, actor=responder, outcome="confirmed")
    gameday_start(game_day=game_day, actor=responder)

    done = gameday_complete(game_day=game_day, actor=responder, outcome="refuted", findings="Failover took 6 min")

    assert done.status == GameDay.Status.COMPLETED
    assert done.outcome == "refuted"
    assert done.ended_at == NOW
    assert done.findings == "Failover took 6 min"


def test_gameday_abort_cancels_open_practice_incidents(frozen, game_day, responder):
    gameday_start(game_day=game_day, actor=responder)

    gameday_abort(game_day=game_day, actor=responder, reason="error rate above 5%")

    game_day.refresh_from_db()
    assert game_day.status == GameDay.Status.ABORTED
    assert "Aborted: error rate above 5%" in game_day.findings
    assert set(Incident.objects.filter(game_day=game_day).values_list("status", flat=True)) == {"cancelled"}


def test_gameday_cannot_start_twice(frozen, game_day, responder):
    gameday_start(game_day=game_day, actor=responder)
    with pytest.raises(DomainError, match="running"):
        gameday_start(game_day=game_day, actor=responder)
    assert Incident.objects.count() == 2


def test_completed_gameday_needs_an_outcome_in_the_database(game_day):
    with pytest.raises(IntegrityError):
        GameDay.objects.filter(pk=game_day.pk).update(status="completed", outcome="")


def test_gameday_cannot_end_before_it_started(game_day):
    with pytest.raises(IntegrityError):
        GameDay.objects.filter(pk=game_day.pk).update(started_at=NOW, ended_at=NOW - timedelta(minutes=1))
