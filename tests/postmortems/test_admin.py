from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems import services
from postmortems.models import ActionItem, Postmortem
from postmortems.rendering import render_markdown
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import TeamFactory, UserFactory
from tests.postmortems.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    PostmortemFactory,
    complete_sections,
)

PM_CHANGELIST = reverse("admin:postmortems_postmortem_changelist")
ITEM_CHANGELIST = reverse("admin:postmortems_actionitem_changelist")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def workflow(pk, name):
    return reverse("admin:postmortems_postmortem_workflow", args=[pk, name])


# --- sanitising -------------------------------------------------------------------------------------------------


def test_render_markdown_removes_scripts_and_event_handlers():
    html = render_markdown(
        "**bold** <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) [ok](https://example.com)\n\n"
        "<a href='#' onclick='steal()'>x</a>"
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html
    assert "onerror" not in html.replace("onerror=alert(1)&gt;", "")  # escaped text only, never an attribute
    assert "<img" not in html
    assert "onclick=" not in html.replace("onclick='steal()'&gt;", "").replace("onclick=&#39;", "")
    assert 'href="javascript' not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html


def test_render_markdown_strips_raw_html_even_when_the_renderer_allows_it():
    import nh3

    from postmortems import rendering

    dirty = '<p onmouseover="x()">hi<script>bad()</script><iframe src="https://evil"></iframe></p>'
    clean = nh3.clean(dirty, tags=rendering.ALLOWED_TAGS, attributes=rendering.ALLOWED_ATTRIBUTES)
    assert clean == "<p>hi</p>"


def test_admin_preview_is_sanitised(manager_client):
    postmortem = PostmortemFactory(summary="Hello <script>alert('x')</script>\n\n<img src=x onerror=alert(1)>")
    response = manager_client.get(reverse("admin:postmortems_postmortem_change", args=[postmortem.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    start = content.index('class="postmortem-preview"')
    preview = content[start : content.index("</div>", start)]
    assert "Hello" in preview
    assert "<script>alert" not in preview
    assert "<img" not in preview


# --- change page, workflow buttons -------------------------------------------------------------------------------


def test_admin_change_page_shows_warnings_inlines_and_buttons(manager_client):
    postmortem = PostmortemFactory(went_badly="This was human error.")
    services.postmortem_update(postmortem=postmortem, actor=None, lessons="We forgot to test.")
    ContributingFactorFactory(postmortem=postmortem)
    ActionItemFactory(postmortem=postmortem, title="Automate rollback")
    response = manager_client.get(reverse("admin:postmortems_postmortem_change", args=[postmortem.pk]))
    content = response.content.decode()
    assert "forgot to" in content
    assert "human error" in content
    assert "Automate rollback" in content
    assert "Submit for review" in content
    assert "Publish" not in content.split("Submit for review")[0][-400:]


def test_admin_workflow_from_draft_to_published(client, manager):
    owner = UserFactory(username="owner", groups=["Responders"])
    postmortem = PostmortemFactory(owner=owner, **complete_sections())
    ContributingFactorFactory(postmortem=postmortem)
    client.force_login(owner)
    assert client.get(workflow(postmortem.pk, "submit")).status_code == 405
    assert client.post(workflow(postmortem.pk, "submit")).status_code == 302
    client.post(workflow(postmortem.pk, "approve"))  # a responder cannot approve: an error message
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert not postmortem.reviews.exists()

    client.force_login(manager)
    response = client.post(workflow(postmortem.pk, "request_changes"), follow=True)
    assert "Say what should change" in response.content.decode()
    client.post(workflow(postmortem.pk, "approve"), {"comment": "Good"})
    client.post(workflow(postmortem.pk, "publish"))
    postmortem.refresh_from_db()
    assert postmortem.status == "published"
    assert postmortem.revisions.count() == 1


def test_admin_save_goes_through_services_and_relints(manager_client, manager):
    postmortem = PostmortemFactory(owner=manager)
    url = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    form = {
        "title": postmortem.title,
        "owner": manager.pk,
        "due_at_0": "2026-03-17",
        "due_at_1": "23:59:59",
        "summary": "The root cause was a config change.",
        **dict.fromkeys(("impact", "timeline", "detection", "trigger", "resolution", "went_well"), ""),
        **dict.fromkeys(("went_badly", "got_lucky", "lessons"), ""),
        "factors-TOTAL_FORMS": "1",
        "factors-INITIAL_FORMS": "0",
        "factors-0-category": "configuration",
        "factors-0-description": "No validation of connection limits.",
        "factors-0-position": "0",
        "action_items-TOTAL_FORMS": "1",
        "action_items-INITIAL_FORMS": "0",
        "action_items-0-title": "Validate limits in CI",
        "action_items-0-owner": manager.pk,
        "action_items-0-priority": "priority",
        "action_items-0-kind": "prevent",
        "action_items-0-due_on": "",
        "action_items-0-tracker_url": "",
        "reviews-TOTAL_FORMS": "0",
        "reviews-INITIAL_FORMS": "0",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    response = manager_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    postmortem.refresh_from_db()
    assert postmortem.summary.startswith("The root cause")
    assert [w["rule"] for w in postmortem.lint_warnings] == ["root_cause"]
    assert postmortem.factors.get().description == "No validation of connection limits."
    item = postmortem.action_items.get()
    assert item.due_is_default
    assert item.due_on is not None
    assert postmortem.events.filter(kind="action_item_added").count() == 1


# --- action item list ----------------------------------------------------------------------------------------------


def _item_changelist_queries(client, count, query=""):
    owners = UserFactory.create_batch(3)
    teams = TeamFactory.create_batch(3)
    postmortems = PostmortemFactory.create_batch(3)
    ActionItem.objects.bulk_create(
        ActionItem(
            postmortem=postmortems[i % 3],
            owner=owners[i % 3],
            team=teams[i % 3],
            title=f"Item {i}",
            due_on=date(2026, 1, 1) + timedelta(days=i),
        )
        for i in range(count)
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ITEM_CHANGELIST + query)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["", "?due=overdue", "?status__exact=open&priority__exact=improvement", "?mine=1"])
def test_action_item_changelist_query_count_is_constant(manager_client, query):
    small = _item_changelist_queries(manager_client, 10, query)
    ActionItem.objects.all().delete()
    Postmortem.objects.all().delete()
    large = _item_changelist_queries(manager_client, 200, query)
    assert small == large


def test_postmortem_changelist_query_count_is_constant(manager_client):
    def run(count):
        for _ in range(count):
            PostmortemFactory(incidents=[IncidentFactory()])
        with CaptureQueriesContext(connection) as queries:
            response = manager_client.get(PM_CHANGELIST)
        assert response.status_code == 200
        return len(queries)

    small = run(10)
    Postmortem.objects.all().delete()
    assert run(200) == small


def test_action_item_filters_overdue_and_mine(manager_client, manager):
    mine = ActionItemFactory(owner=manager, title="Mine overdue", due_on=date(2020, 1, 1))
    ActionItemFactory(title="Someone else's", due_on=date(2999, 1, 1))
    content = manager_client.get(ITEM_CHANGELIST + "?due=overdue").content.decode()
    assert mine.title in content
    assert "Someone else" not in content
    assert "Someone else" not in manager_client.get(ITEM_CHANGELIST + "?mine=1").content.decode()


def test_responder_cannot_change_someone_elses_item(client, responder):
    other = ActionItemFactory(title="Not yours")
    own = ActionItemFactory(owner=responder, title="Yours")
    client.force_login(responder)
    assert client.get(reverse("admin:postmortems_actionitem_change", args=[own.pk])).status_code == 200
    response = client.post(
        ITEM_CHANGELIST, {"action": "mark_done", "_selected_action": [own.pk, other.pk]}, follow=True
    )
    assert response.status_code == 200
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.status == "done"
    assert other.status == "open"


def test_action_item_change_form_links_a_runbook_and_a_game_day(manager_client):
    from django.utils import timezone

    from incidents.models import GameDay
    from incidents.runbooks.services import runbook_create
    from tests.incidents.factories import ServiceFactory

    item = ActionItemFactory(title="Update the runbook", due_on=date(2999, 1, 1))
    runbook = runbook_create(service=ServiceFactory(), title="Failover", body="steps", author=None)
    drill = GameDay.objects.create(title="Drill", hypothesis="It fails over", scheduled_for=timezone.now())
    url = reverse("admin:postmortems_actionitem_change", args=[item.pk])
    page = manager_client.get(url).content.decode()
    assert 'name="runbook"' in page
    assert 'name="game_day"' in page

    response = manager_client.post(
        url,
        {
            "postmortem": item.postmortem_id or "",
            "title": item.title,
            "owner": item.owner_id or "",
            "team": item.team_id or "",
            "priority": item.priority,
            "kind": item.kind,
            "due_on": "2999-01-01",
            "tracker_url": "",
            "runbook": runbook.pk,
            "game_day": drill.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert (item.runbook, item.game_day) == (runbook, drill)


# --- approvals, amendments, withdrawn drafts, messages ---------------------------------------------------------------


def change_url(postmortem):
    return reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])


def change_form(postmortem, **overrides):
    """The change form as the page posts it, nothing changed unless overridden (one factor, no extra rows)."""
    factor = postmortem.factors.get()
    form = {
        "title": postmortem.title,
        "incidents": [incident.pk for incident in postmortem.incidents.all()],
        "owner": postmortem.owner_id or "",
        "due_at_0": postmortem.due_at.strftime("%Y-%m-%d"),
        "due_at_1": postmortem.due_at.strftime("%H:%M:%S"),
        **{name: getattr(postmortem, name) for name in services.SECTIONS},
        "factors-TOTAL_FORMS": "1",
        "factors-INITIAL_FORMS": "1",
        "factors-0-id": factor.pk,
        "factors-0-postmortem": postmortem.pk,
        "factors-0-category": factor.category,
        "factors-0-description": factor.description,
        "factors-0-position": factor.position,
        "action_items-TOTAL_FORMS": "0",
        "action_items-INITIAL_FORMS": "0",
        "reviews-TOTAL_FORMS": "0",
        "reviews-INITIAL_FORMS": "0",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    form.update(overrides)
    return form


def approved_postmortem(client, owner, manager):
    postmortem = PostmortemFactory(owner=owner, **complete_sections())
    ContributingFactorFactory(postmortem=postmortem)
    services.postmortem_submit(postmortem=postmortem, actor=owner)
    services.postmortem_approve(postmortem=postmortem, reviewer=manager)
    client.force_login(owner)
    return postmortem


@pytest.mark.parametrize(
    "change",
    [{"summary": "Changed after the approval."}, {"factors-0-description": "Reworded after the approval."}],
    ids=["section", "factor inline"],
)
def test_admin_edit_after_approval_withdraws_it(client, manager, change):
    owner = UserFactory(username="owner", groups=["Responders"])
    postmortem = approved_postmortem(client, owner, manager)

    response = client.post(change_url(postmortem), change_form(postmortem, **change))
    assert response.status_code == 302, response.content.decode()[:3000]

    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"
    assert postmortem.events.filter(kind="approval_withdrawn").count() == 1
    page = client.get(change_url(postmortem)).content.decode()
    assert "Approval withdrawn" in page
    response = client.post(workflow(postmortem.pk, "publish"), follow=True)
    assert "needs an approval by a manager" in response.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.status == "in_review"


def test_admin_save_without_content_change_keeps_the_approval(client, manager):
    owner = UserFactory(username="owner", groups=["Responders"])
    postmortem = approved_postmortem(client, owner, manager)
    response = client.post(change_url(postmortem), change_form(postmortem))
    assert response.status_code == 302
    client.post(workflow(postmortem.pk, "publish"))
    postmortem.refresh_from_db()
    assert postmortem.status == "published"


def test_admin_readers_see_the_published_revision_during_an_amendment(client, manager):
    owner = UserFactory(username="owner", groups=["Responders"])
    postmortem = approved_postmortem(client, owner, manager)
    services.postmortem_publish(postmortem=postmortem, actor=manager)
    services.postmortem_amend(postmortem=postmortem, actor=owner, reason="New factor")
    services.postmortem_update(postmortem=postmortem, actor=owner, summary="Unreviewed words.", title="WIP title")
    services.contributing_factor_save(
        postmortem=postmortem, actor=owner, category="capacity", description="An unreviewed factor."
    )

    client.force_login(UserFactory(username="reader", groups=["Responders"]))
    page = client.get(change_url(postmortem)).content.decode()
    assert complete_sections()["summary"] in page
    assert "The connection limit was not validated before rollout." in page
    assert "revision 1, published" in page
    for text in ("Unreviewed words", "WIP title", "An unreviewed factor"):
        assert text not in page
    listing = client.get(PM_CHANGELIST).content.decode()
    assert postmortem.title in listing
    assert "WIP title" not in listing

    client.force_login(owner)
    page = client.get(change_url(postmortem)).content.decode()
    assert "Unreviewed words" in page
    assert "An unreviewed factor" in page
    assert "WIP title" in client.get(PM_CHANGELIST).content.decode()


def test_admin_shows_a_withdrawn_postmortem_read_only(manager_client):
    postmortem = PostmortemFactory(status="withdrawn", summary="Kept as written.")
    assert "Withdrawn" in manager_client.get(PM_CHANGELIST).content.decode()
    page = manager_client.get(change_url(postmortem)).content.decode()
    assert "Kept as written." in page
    assert 'name="summary"' not in page
    assert "Submit for review" not in page


def test_admin_error_messages_name_fields_by_their_label(db, client):
    owner = UserFactory(username="owner", groups=["Responders"])
    postmortem = PostmortemFactory(owner=owner)
    client.force_login(owner)
    response = client.post(workflow(postmortem.pk, "submit"), follow=True)
    text = " ".join(str(message) for message in response.context["messages"])
    assert "Contributing factors: Add at least one contributing factor." in text
    assert "Customer impact: Customer impact is required before review." in text
    assert "contributing_factors" not in text
    assert not text.startswith("summary:")
    assert "; impact:" not in text
