"""Each named constraint of postmortems.models, violated once."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Postmortem,
    PostmortemEvent,
    PostmortemReview,
    PostmortemRevision,
)
from tests.oncall.factories import UserFactory
from tests.postmortems.factories import ActionItemFactory, PostmortemFactory


def violates(name, make):
    with pytest.raises(IntegrityError, match=name), transaction.atomic():
        make()


def test_actionitem_completed_iff_done(db):
    violates("postmortems_actionitem_completed_iff_done", lambda: ActionItemFactory(status="done", completed_at=None))
    violates(
        "postmortems_actionitem_completed_iff_done",
        lambda: ActionItemFactory(status="open", completed_at=timezone.now()),
    )
    assert ActionItemFactory(status="done", completed_at=timezone.now()).pk


def test_actionitem_wont_do_needs_reason(db):
    violates("postmortems_actionitem_wont_do_needs_reason", lambda: ActionItemFactory(status="wont_do"))


def test_actionitem_reason_only_for_wont_do(db):
    violates(
        "postmortems_actionitem_reason_only_for_wont_do",
        lambda: ActionItemFactory(status="open", wont_do_reason="not needed"),
    )


def test_actionitem_title_not_blank(db):
    violates("postmortems_actionitem_title_not_blank", lambda: ActionItemFactory(title=""))


def test_actionitem_without_postmortem_is_allowed(db):
    assert ActionItemFactory(postmortem=None).pk  # game days come later


def test_postmortem_published_has_time(db):
    violates("postmortems_postmortem_published_has_time", lambda: PostmortemFactory(status="published"))


def test_postmortem_title_not_blank(db):
    violates("postmortems_postmortem_title_not_blank", lambda: PostmortemFactory(title=""))


def test_factor_description_not_blank(db):
    postmortem = PostmortemFactory()
    violates(
        "postmortems_factor_description_not_blank",
        lambda: ContributingFactor.objects.create(postmortem=postmortem, category="unknown", description=""),
    )


def test_review_changes_need_comment(db):
    postmortem = PostmortemFactory()
    violates(
        "postmortems_review_changes_need_comment",
        lambda: PostmortemReview.objects.create(
            postmortem=postmortem,
            reviewer=UserFactory(),
            decision="request_changes",
            round=1,
            created_at=timezone.now(),
        ),
    )


def test_event_has_subject(db):
    violates(
        "postmortems_event_has_subject",
        lambda: PostmortemEvent.objects.create(at=timezone.now(), kind="edited"),
    )


def test_revision_unique_number_and_immutable(db):
    postmortem = PostmortemFactory()
    revision = PostmortemRevision.objects.create(
        postmortem=postmortem, number=1, published_at=timezone.now(), content={}
    )
    violates(
        "postmortems_revision_unique_number",
        lambda: PostmortemRevision.objects.create(
            postmortem=postmortem, number=1, published_at=timezone.now(), content={}
        ),
    )
    revision.content = {"title": "rewritten"}
    with pytest.raises(ValidationError):
        revision.save()


def test_str_and_ref(db):
    postmortem = PostmortemFactory(title="Checkout errors")
    assert str(postmortem) == f"PM-{postmortem.pk} Checkout errors"
    assert ActionItem(title="x").is_open
    assert Postmortem.Status.PUBLISHED.label == "Published"


def test_action_item_can_point_at_a_runbook_and_come_from_a_game_day(db):
    from django.utils import timezone

    from incidents.models import GameDay
    from incidents.runbooks.services import runbook_create
    from postmortems.models import ActionItem
    from tests.incidents.factories import ServiceFactory

    service = ServiceFactory()
    runbook = runbook_create(service=service, title="Failover", body="steps", author=None)
    game_day = GameDay.objects.create(title="Drill", hypothesis="It fails over", scheduled_for=timezone.now())

    item = ActionItem.objects.create(title="Update the failover runbook", runbook=runbook, game_day=game_day)

    assert list(runbook.action_items.all()) == [item]
    assert list(game_day.action_items.all()) == [item]
    runbook.delete()
    item.refresh_from_db()
    assert item.runbook is None
