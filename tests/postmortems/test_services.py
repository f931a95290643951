from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from incidents import services as incident_services
from oncall.errors import DomainError
from oncall.models import Notification
from postmortems import services
from postmortems.models import ActionItem, ContributingFactor, Postmortem, PostmortemEvent, PostmortemRevision
from tests.oncall.factories import TeamMembershipFactory, UserFactory
from tests.postmortems.factories import ActionItemFactory, PostmortemFactory, complete_sections

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def kinds(postmortem):
    return list(postmortem.events.order_by("at", "id").values_list("kind", flat=True))


def resolved_incident(service, commander, severity="P1", at=T0):
    with time_machine.travel(at - timedelta(minutes=30), tick=False):
        incident = incident_services.incident_declare(
            title="Checkout down", severity=severity, service=service, actor=commander, commander=commander
        )
        incident_services.incident_acknowledge(incident=incident, actor=commander)
        incident_services.status_update_create(incident=incident, author=commander, message="Rolling back")
    with time_machine.travel(at, tick=False):
        return incident_services.incident_resolve(incident=incident, actor=commander)


def ready_for_review(postmortem, owner):
    services.postmortem_update(postmortem=postmortem, actor=owner, **complete_sections())
    services.contributing_factor_save(
        postmortem=postmortem, actor=owner, category="configuration", description="The limit had no validation."
    )
    return postmortem


@pytest.fixture
def reviewer(team):
    return TeamMembershipFactory(
        team=team, user=UserFactory(username="reviewer", groups=["Managers"]), role="manager"
    ).user


# --- the draft on resolve ------------------------------------------------------------------------------------


def test_resolving_a_p1_creates_one_draft_with_local_due_date_and_timeline(service, responder, reviewer):
    incident = resolved_incident(service, responder)

    postmortem = Postmortem.objects.get()
    assert list(postmortem.incidents.all()) == [incident]
    assert postmortem.status == Postmortem.Status.DRAFT
    assert postmortem.owner == responder
    # resolved 2026-03-10 13:00 in Berlin; P1 deadline 7 days → end of 2026-03-17 Berlin time
    assert postmortem.due_at.astimezone(BERLIN).date() == date(2026, 3, 17)
    assert postmortem.due_at == datetime(2026, 3, 17, 23, 59, 59, 999999, tzinfo=BERLIN)
    assert "Declared" in postmortem.timeline
    assert "Rolling back" in postmortem.timeline
    assert "Resolved" in postmortem.timeline
    assert "2026-03-10 13:00 CET" in postmortem.timeline
    assert incident.ref in postmortem.impact
    assert kinds(postmortem) == ["created"]
    assert (
        Notification.objects.filter(
            dedupe_key__startswith=f"postmortem:{postmortem.pk}:created", user=responder
        ).count()
        == 1
    )


def test_draft_due_date_uses_the_local_resolve_date(service, responder):
    # 23:30 UTC on 10 March is already 11 March in Berlin
    resolved_incident(service, responder, at=datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
    assert Postmortem.objects.get().due_at.astimezone(BERLIN).date() == date(2026, 3, 18)


def test_resolving_again_or_reopening_makes_no_second_draft(service, responder):
    incident = resolved_incident(service, responder)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        incident_services.incident_resolve(incident=incident, actor=responder)
        incident_services.incident_reopen(incident=incident, actor=responder)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        incident_services.incident_resolve(incident=incident, actor=responder)
    assert Postmortem.objects.count() == 1
    assert services.postmortem_draft_for_incident(incident=incident) is None


def test_p3_gets_no_draft_and_closes_freely(service, responder):
    incident = resolved_incident(service, responder, severity="P3")
    assert Postmortem.objects.count() == 0
    incident_services.incident_close(incident=incident, actor=responder)


def test_closing_needs_a_published_postmortem(service, responder, reviewer):
    incident = resolved_incident(service, responder)
    with pytest.raises(DomainError) as exc:
        incident_services.incident_close(incident=incident, actor=responder)
    assert exc.value.code == "postmortem_not_published"
    assert "until its postmortem is published" in exc.value.message
    incident.refresh_from_db()
    assert incident.status == "resolved"

    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    assert incident_services.incident_close(incident=incident, actor=responder).status == "closed"


def test_closing_without_any_postmortem_says_so(service, responder):
    incident = resolved_incident(service, responder)
    Postmortem.objects.all().delete()
    with pytest.raises(DomainError, match="needs a published postmortem and it has none"):
        incident_services.incident_close(incident=incident, actor=responder)


def test_one_postmortem_covers_several_incidents(service, responder):
    first = resolved_incident(service, responder)
    postmortem = Postmortem.objects.get()
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        second = incident_services.incident_declare(title="Again", severity="P2", service=service, actor=responder)
        services.postmortem_link_incident(postmortem=postmortem, incident=second, actor=responder)
        services.postmortem_link_incident(postmortem=postmortem, incident=second, actor=responder)  # no-op
        incident_services.incident_resolve(incident=second, actor=responder)
    assert Postmortem.objects.count() == 1  # the second incident is already covered
    assert set(postmortem.incidents.all()) == {first, second}
    assert kinds(postmortem).count("incident_linked") == 1


# --- workflow ---------------------------------------------------------------------------------------------------


def test_postmortem_submit_names_every_missing_field_and_changes_nothing(db):
    postmortem = PostmortemFactory(owner=None)
    ActionItemFactory(postmortem=postmortem, title="Add a canary", owner=None, due_on=None)
    with pytest.raises(ValidationError) as exc:
        services.postmortem_submit(postmortem=postmortem, actor=None)
    errors = exc.value.message_dict
    assert {"summary", "impact", "timeline", "detection", "trigger", "resolution", "lessons"} <= set(errors)
    assert errors["contributing_factors"] == ["Add at least one contributing factor."]
    assert errors["owner"]
    assert errors["action_items"] == ["“Add a canary” needs an owner and a due date"]
    postmortem.refresh_from_db()
    assert postmortem.status == "draft"
    assert kinds(postmortem) == []


def test_postmortem_submit_moves_to_review_and_asks_the_team_managers(
    service, responder, reviewer, django_capture_on_commit_callbacks
):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    with django_capture_on_commit_callbacks() as callbacks:
        services.postmortem_submit(postmortem=postmortem, actor=responder)
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert postmortem.review_round == 1
    assert kinds(postmortem)[-1] == "submitted"
    asks = Notification.objects.filter(dedupe_key__startswith=f"postmortem:{postmortem.pk}:submitted:1:")
    assert list(asks.values_list("user__username", flat=True)) == ["reviewer"]
    assert len(callbacks) == 1  # delivery queued after commit
    services.postmortem_submit(postmortem=postmortem, actor=responder)  # repeating is a no-op
    assert kinds(postmortem).count("submitted") == 1


def test_author_cannot_approve_own_postmortem_but_another_manager_can(service, reviewer):
    author = UserFactory(username="author", groups=["Managers"])
    resolved_incident(service, author)
    postmortem = ready_for_review(Postmortem.objects.get(), author)
    services.postmortem_submit(postmortem=postmortem, actor=author)

    with pytest.raises(DomainError) as exc:
        services.postmortem_approve(postmortem=postmortem, reviewer=author)
    assert exc.value.code == "own_postmortem"
    with pytest.raises(DomainError, match="approval by a manager who is not the author"):
        services.postmortem_publish(postmortem=postmortem, actor=author)

    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer, comment="Clear and blameless.")
    services.postmortem_publish(postmortem=postmortem, actor=author)
    postmortem.refresh_from_db()
    assert postmortem.status == "published"
    assert postmortem.published_at is not None
    assert kinds(postmortem)[-2:] == ["approved", "published"]
    revision = PostmortemRevision.objects.get(postmortem=postmortem)
    assert revision.number == 1
    assert revision.content["sections"]["summary"] == complete_sections()["summary"]


def test_a_responder_cannot_approve(service, responder):
    other = UserFactory(username="other", groups=["Responders"])
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    with pytest.raises(DomainError) as exc:
        services.postmortem_approve(postmortem=postmortem, reviewer=other)
    assert exc.value.code == "not_a_manager"


def test_request_changes_needs_a_comment_and_returns_to_draft(service, responder, reviewer):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    with pytest.raises(ValidationError) as exc:
        services.postmortem_request_changes(postmortem=postmortem, reviewer=reviewer, comment=" ")
    assert "comment" in exc.value.message_dict

    services.postmortem_request_changes(postmortem=postmortem, reviewer=reviewer, comment="Add the detection gap.")
    postmortem.refresh_from_db()
    assert postmortem.status == "draft"
    assert kinds(postmortem)[-1] == "changes_requested"
    note = Notification.objects.get(dedupe_key__startswith=f"postmortem:{postmortem.pk}:changes:")
    assert note.user == responder
    assert "Add the detection gap." in note.body
    # an approval of the earlier round does not carry over
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    with pytest.raises(DomainError):
        services.postmortem_publish(postmortem=postmortem, actor=responder)


def test_amendment_keeps_the_earlier_published_revision(service, responder, reviewer):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    first_published = Postmortem.objects.get().published_at

    with pytest.raises(DomainError):
        services.postmortem_update(postmortem=postmortem, actor=responder, summary="changed in place")
    with pytest.raises(ValidationError):
        services.postmortem_amend(postmortem=postmortem, actor=responder, reason="")
    services.postmortem_amend(postmortem=postmortem, actor=responder, reason="A second contributing factor found")
    services.postmortem_update(postmortem=postmortem, actor=responder, summary="Amended summary.")
    with pytest.raises(DomainError):  # the new round needs a new approval
        services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    services.postmortem_publish(postmortem=postmortem, actor=reviewer)

    postmortem.refresh_from_db()
    assert postmortem.published_at == first_published
    revisions = list(postmortem.revisions.order_by("number"))
    assert [r.number for r in revisions] == [1, 2]
    assert revisions[0].content["sections"]["summary"] == complete_sections()["summary"]
    assert revisions[1].content["sections"]["summary"] == "Amended summary."
    assert "amendment_started" in kinds(postmortem)


def test_transitions_refused_from_the_wrong_state(db):
    postmortem = PostmortemFactory()
    with pytest.raises(DomainError, match="submit it for review first"):
        services.postmortem_publish(postmortem=postmortem, actor=None)
    with pytest.raises(DomainError):
        services.postmortem_amend(postmortem=postmortem, actor=None, reason="x")
    with pytest.raises(DomainError):
        services.postmortem_approve(postmortem=postmortem, reviewer=UserFactory(groups=["Managers"]))


# --- blameless check on save ---------------------------------------------------------------------------------


def test_lint_runs_on_save_name_and_counterfactual_in_a_factor(db):
    UserFactory(username="dquill", first_name="Dana", last_name="Quill")
    postmortem = PostmortemFactory()
    services.contributing_factor_save(
        postmortem=postmortem,
        actor=None,
        category="configuration",
        description="Dana Quill should have checked the config.",
    )
    services.contributing_factor_save(
        postmortem=postmortem, actor=None, category="process", description="The rollback should be automated."
    )
    postmortem.refresh_from_db()
    assert [(w["rule"], w["phrase"], w["where"]) for w in postmortem.lint_warnings] == [
        ("counterfactual", "should have", "contributing_factors[0]"),
        ("person_named", "Dana Quill", "contributing_factors[0]"),
    ]
    services.postmortem_update(postmortem=postmortem, actor=None, lessons="The root cause was a missing check.")
    postmortem.refresh_from_db()
    assert {w["rule"] for w in postmortem.lint_warnings} == {"counterfactual", "person_named", "root_cause"}


def test_lint_warnings_never_block_submission(service, responder):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_update(postmortem=postmortem, actor=responder, went_badly="It was human error.")
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert [w["rule"] for w in postmortem.lint_warnings] == ["blame_label"]


def test_postmortem_update_rejects_unknown_fields_and_blank_title(db):
    postmortem = PostmortemFactory()
    with pytest.raises(ValidationError) as exc:
        services.postmortem_update(postmortem=postmortem, actor=None, status="published")
    assert "status" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.postmortem_update(postmortem=postmortem, actor=None, title=" ")
    assert "title" in exc.value.message_dict


def test_contributing_factor_save_validates_category(db):
    with pytest.raises(ValidationError) as exc:
        services.contributing_factor_save(postmortem=PostmortemFactory(), actor=None, category="human", description="x")
    assert "category" in exc.value.message_dict
    assert ContributingFactor.objects.count() == 0


# --- action items -------------------------------------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_action_item_default_due_dates_rebased_at_publication(service, responder, reviewer):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    urgent = services.action_item_create(
        postmortem=postmortem, actor=responder, title="Validate limits", owner=responder, priority="priority"
    )
    later = services.action_item_create(postmortem=postmortem, actor=responder, title="Canary configs", owner=responder)
    fixed = services.action_item_create(
        postmortem=postmortem, actor=responder, title="Alert on pool", owner=responder, due_on=date(2026, 3, 20)
    )
    assert urgent.due_on == date(2026, 4, 7)  # 28 days
    assert later.due_on == date(2026, 6, 8)  # 90 days
    assert urgent.team == service.team
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    for item in (urgent, later, fixed):
        item.refresh_from_db()
    assert urgent.due_on == date(2026, 4, 12)  # 28 days after publication
    assert later.due_on == date(2026, 6, 13)
    assert fixed.due_on == date(2026, 3, 20)  # an explicit date is kept


def test_action_item_status_transitions_stamp_completed_at(db):
    item = ActionItemFactory()
    with time_machine.travel(T0, tick=False):
        services.action_item_set_status(item=item, actor=item.owner, status="in_progress")
        item = services.action_item_set_status(item=item, actor=item.owner, status="done")
        assert item.completed_at == T0
        services.action_item_set_status(item=item, actor=item.owner, status="done")  # no-op
    assert item.events.filter(kind="action_item_status").count() == 2
    item = services.action_item_set_status(item=item, actor=item.owner, status="open")
    assert item.completed_at is None
    with pytest.raises(ValidationError) as exc:
        services.action_item_set_status(item=item, actor=item.owner, status="wont_do")
    assert "wont_do_reason" in exc.value.message_dict
    item = services.action_item_set_status(item=item, actor=item.owner, status="wont_do", reason="Service retired")
    assert item.wont_do_reason == "Service retired"
    with pytest.raises(ValidationError) as exc:
        services.action_item_set_status(item=item, actor=item.owner, status="closed")
    assert "status" in exc.value.message_dict


def test_action_item_create_rejects_bad_input(db):
    with pytest.raises(ValidationError) as exc:
        services.action_item_create(actor=None, title=" ", priority="urgent", kind="blame")
    assert set(exc.value.message_dict) == {"title", "priority", "kind"}
    with pytest.raises(ValidationError) as exc:
        services.action_item_create(actor=None, title="x", tracker_url="not a url")
    assert "tracker_url" in exc.value.message_dict
    assert ActionItem.objects.count() == 0


def test_action_item_update_records_changes(db):
    item = ActionItemFactory(due_is_default=True)
    other = UserFactory()
    item = services.action_item_update(item=item, actor=None, owner=other, due_on=date(2026, 5, 1))
    assert (item.owner, item.due_on, item.due_is_default) == (other, date(2026, 5, 1), False)
    event = PostmortemEvent.objects.get(action_item=item, kind="action_item_changed")
    assert set(event.data) == {"owner", "due_on"}


# --- an approval covers the text it approved ----------------------------------------------------------------------


def approved(service, responder, reviewer):
    resolved_incident(service, responder)
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    return postmortem


def change_summary(postmortem, actor):
    services.postmortem_update(postmortem=postmortem, actor=actor, summary="Text nobody reviewed.")


def change_title(postmortem, actor):
    services.postmortem_update(postmortem=postmortem, actor=actor, title="A new title")


def add_factor(postmortem, actor):
    services.contributing_factor_save(
        postmortem=postmortem, actor=actor, category="capacity", description="The pool was sized for last year."
    )


def edit_factor(postmortem, actor):
    factor = postmortem.factors.get()
    services.contributing_factor_save(
        postmortem=postmortem, actor=actor, category=factor.category, description="Reworded.", factor=factor
    )


def delete_factor(postmortem, actor):
    services.contributing_factor_delete(factor=postmortem.factors.get(), actor=actor)


def link_incident(postmortem, actor):
    first = postmortem.incidents.get()
    other = incident_services.incident_declare(title="Again", severity="P2", service=first.service, actor=actor)
    services.postmortem_link_incident(postmortem=postmortem, incident=other, actor=actor)


@pytest.mark.parametrize(
    "change", [change_summary, change_title, add_factor, edit_factor, delete_factor, link_incident]
)
def test_postmortem_content_change_after_approval_withdraws_it(service, responder, reviewer, change):
    postmortem = approved(service, responder, reviewer)

    change(postmortem, responder)

    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert postmortem.review_round == 2
    withdrawn = postmortem.events.get(kind="approval_withdrawn")
    assert withdrawn.message.startswith("Approval by reviewer withdrawn:")
    assert Notification.objects.filter(
        dedupe_key=f"postmortem:{postmortem.pk}:approval-withdrawn:2:{reviewer.pk}", user=reviewer
    ).exists()
    with pytest.raises(DomainError) as exc:
        services.postmortem_publish(postmortem=postmortem, actor=responder)
    assert exc.value.code == "postmortem_not_approved"
    # approving again covers the new text, and that text is what gets published
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    services.postmortem_publish(postmortem=postmortem, actor=responder)
    postmortem.refresh_from_db()
    assert postmortem.revisions.get().content == services._snapshot(postmortem)


def test_postmortem_owner_due_date_and_action_items_keep_the_approval(service, responder, reviewer):
    postmortem = approved(service, responder, reviewer)
    services.postmortem_update(
        postmortem=postmortem, actor=responder, owner=UserFactory(username="new-owner"), due_at=T0 + timedelta(days=9)
    )
    services.action_item_create(postmortem=postmortem, actor=responder, title="Alert on pool", owner=responder)
    factor = postmortem.factors.get()
    services.contributing_factor_save(  # the same text again is no change
        postmortem=postmortem, actor=responder, category=factor.category, description=factor.description, factor=factor
    )
    assert "approval_withdrawn" not in kinds(postmortem)
    services.postmortem_publish(postmortem=postmortem, actor=responder)
    assert Postmortem.objects.get().status == "published"


def test_postmortem_edit_during_amendment_after_approval_withdraws_it(service, responder, reviewer):
    postmortem = approved(service, responder, reviewer)
    services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    services.postmortem_amend(postmortem=postmortem, actor=responder, reason="A second factor")
    add_factor(postmortem, responder)
    services.postmortem_approve(postmortem=postmortem, reviewer=reviewer)
    change_summary(postmortem, responder)
    with pytest.raises(DomainError):
        services.postmortem_publish(postmortem=postmortem, actor=reviewer)
    assert kinds(postmortem).count("approval_withdrawn") == 1


# --- lowering the severity (docs/postmortems.md, "When the severity changes") ------------------------------------


def lower(incident, actor, severity="P3"):
    return incident_services.incident_update(incident=incident, actor=actor, severity=severity)


def test_lowering_severity_withdraws_a_draft_nothing_was_submitted_for(service, responder):
    incident = resolved_incident(service, responder, severity="P2")
    postmortem = Postmortem.objects.get()

    lower(incident, responder)

    postmortem.refresh_from_db()
    assert postmortem.status == "withdrawn"
    event = postmortem.events.get(kind="withdrawn")
    assert event.message.startswith(f"Withdrawn: {incident.ref} is now P3, which needs no postmortem")
    note = incident.events.filter(kind="note").get()
    assert note.message.startswith(f"{postmortem.ref} withdrawn:")
    assert incident_services.incident_close(incident=incident, actor=responder).status == "closed"
    with pytest.raises(DomainError) as exc:
        services.postmortem_update(postmortem=postmortem, actor=responder, summary="x")
    assert exc.value.code == "postmortem_withdrawn"
    # never chased: no digest, however late
    from postmortems import selectors

    assert selectors.reminder_digests(now=postmortem.due_at + timedelta(days=30)) == []


def test_lowering_severity_keeps_a_submitted_postmortem_required(service, responder, reviewer):
    incident = resolved_incident(service, responder, severity="P2")
    postmortem = ready_for_review(Postmortem.objects.get(), responder)
    services.postmortem_submit(postmortem=postmortem, actor=responder)

    lower(incident, responder)

    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    with pytest.raises(DomainError) as exc:
        incident_services.incident_close(incident=incident, actor=responder)
    assert exc.value.code == "postmortem_not_published"
    assert f"PM-{postmortem.pk} is in review" in exc.value.message
    # sent back for changes, it is still required: it was submitted once
    services.postmortem_request_changes(postmortem=postmortem, reviewer=reviewer, comment="Add the detection gap.")
    lower(incident, responder, "P2")
    lower(incident, responder, "P3")
    assert Postmortem.objects.get().status == "draft"
    with pytest.raises(DomainError):
        incident_services.incident_close(incident=incident, actor=responder)


def test_raising_severity_again_restores_the_withdrawn_draft(service, responder):
    incident = resolved_incident(service, responder, severity="P2")
    lower(incident, responder)
    lower(incident, responder, "P1")
    postmortem = Postmortem.objects.get()
    assert postmortem.status == "draft"
    assert kinds(postmortem)[-2:] == ["withdrawn", "restored"]
    with pytest.raises(DomainError):
        incident_services.incident_close(incident=incident, actor=responder)


def test_raising_a_resolved_p3_creates_its_draft(service, responder):
    incident = resolved_incident(service, responder, severity="P3")
    assert Postmortem.objects.count() == 0
    lower(incident, responder, "P2")
    postmortem = Postmortem.objects.get()
    assert list(postmortem.incidents.all()) == [incident]
    assert postmortem.status == "draft"


def test_a_draft_covering_another_incident_that_needs_it_is_kept(service, responder):
    first = resolved_incident(service, responder, severity="P2")
    postmortem = Postmortem.objects.get()
    second = incident_services.incident_declare(title="Again", severity="P1", service=service, actor=responder)
    services.postmortem_link_incident(postmortem=postmortem, incident=second, actor=responder)
    lower(first, responder)
    assert Postmortem.objects.get().status == "draft"


def test_action_item_status_event_speaks_in_labels(db):
    item = ActionItemFactory(title="Retire the cron")
    services.action_item_set_status(item=item, actor=item.owner, status="wont_do", reason="Service retired")
    event = PostmortemEvent.objects.get(action_item=item, kind="action_item_status")
    assert event.message == "Retire the cron: Open → Won't do"
    assert event.data == {"old": "open", "new": "wont_do", "reason": "Service retired"}
