from datetime import UTC, date, datetime, timedelta

import time_machine

from oncall.models import Notification
from postmortems import selectors, tasks
from tests.oncall.factories import UserFactory
from tests.postmortems.factories import ActionItemFactory, PostmortemFactory

T0 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)


def digests():
    return Notification.objects.filter(dedupe_key__startswith="postmortem-digest:")


def test_overdue_item_gets_one_digest_per_day_however_often_the_task_runs(db, django_capture_on_commit_callbacks):
    owner = UserFactory(username="owner")
    ActionItemFactory(owner=owner, title="Alert on pool usage", due_on=date(2026, 5, 1))
    ActionItemFactory(owner=owner, title="Due soon", due_on=date(2026, 5, 5))
    ActionItemFactory(owner=owner, title="Far away", due_on=date(2026, 6, 30))
    ActionItemFactory(owner=owner, title="Done already", due_on=date(2026, 4, 1), status="done", completed_at=T0)

    with time_machine.travel(T0, tick=False):
        with django_capture_on_commit_callbacks() as callbacks:
            assert tasks.send_postmortem_reminders() == 1
        assert len(callbacks) == 1
        assert tasks.send_postmortem_reminders() == 0
    with time_machine.travel(T0 + timedelta(hours=10), tick=False):
        assert tasks.send_postmortem_reminders() == 0
    (digest,) = digests()
    assert digest.user == owner
    assert digest.dedupe_key == f"postmortem-digest:{owner.pk}:2026-05-04"
    assert "Alert on pool usage" in digest.body
    assert "Due soon" in digest.body
    assert "Far away" not in digest.body
    assert "Done already" not in digest.body
    assert digest.payload["html"].startswith("<p>")

    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        assert tasks.send_postmortem_reminders() == 1
    assert digests().count() == 2


def test_postmortem_owner_reminded_before_due_and_when_late_once_a_day(db):
    owner = UserFactory(username="pmowner")
    soon = PostmortemFactory(owner=owner, title="Soon", due_at=T0 + timedelta(days=1))
    late = PostmortemFactory(owner=owner, title="Late", due_at=T0 - timedelta(days=1))
    PostmortemFactory(owner=owner, title="Later", due_at=T0 + timedelta(days=6))
    ActionItemFactory(owner=owner, due_on=date(2026, 5, 1))

    with time_machine.travel(T0, tick=False):
        assert tasks.send_postmortem_reminders() == 1  # one digest for items and postmortems together
        assert tasks.send_postmortem_reminders() == 0
    (digest,) = digests()
    assert "Postmortems past their due date" in digest.body
    assert "Late" in digest.body
    assert "Soon" in digest.body
    assert "Later" not in digest.body
    assert late.events.filter(kind="reminder_sent").count() == 1
    assert soon.events.filter(kind="reminder_sent").count() == 1


def test_published_postmortems_and_ownerless_items_are_not_chased(db):
    PostmortemFactory(due_at=T0 - timedelta(days=3), status="published", published_at=T0)
    ActionItemFactory(owner=None, due_on=date(2026, 5, 1))
    with time_machine.travel(T0, tick=False):
        assert tasks.send_postmortem_reminders() == 0


def test_action_items_overdue_selector(db):
    overdue = ActionItemFactory(due_on=date(2026, 5, 3))
    ActionItemFactory(due_on=date(2026, 5, 4))
    ActionItemFactory(due_on=date(2026, 5, 1), status="wont_do", wont_do_reason="retired")
    with time_machine.travel(T0, tick=False):
        assert list(selectors.action_items_overdue()) == [overdue]


def test_a_withdrawn_draft_is_never_chased(db):
    owner = UserFactory(username="pmowner")
    PostmortemFactory(owner=owner, title="Withdrawn", due_at=T0 - timedelta(days=3), status="withdrawn")
    with time_machine.travel(T0, tick=False):
        assert tasks.send_postmortem_reminders() == 0
    assert not digests().exists()
