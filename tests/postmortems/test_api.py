from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from postmortems.models import Postmortem
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import TeamFactory, TeamMembershipFactory, UserFactory
from tests.postmortems.factories import (
    ActionItemFactory,
    ContributingFactorFactory,
    PostmortemFactory,
    complete_sections,
)

API = "/api/v1/postmortems/"
ITEMS = "/api/v1/action-items/"


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", groups=["Responders"])


@pytest.fixture
def owner_api(api_client, owner):
    api_client.force_authenticate(owner)
    return api_client


def ready(owner, **kwargs):
    postmortem = PostmortemFactory(owner=owner, **complete_sections(), **kwargs)
    ContributingFactorFactory(postmortem=postmortem)
    return postmortem


def test_api_full_workflow_and_publication_visible_to_another_team(api_client, owner, manager):
    postmortem = ready(owner, incidents=[IncidentFactory()])
    outsider = UserFactory(username="outsider", groups=["Responders"])
    TeamMembershipFactory(user=outsider, team=TeamFactory())

    api_client.force_authenticate(outsider)
    assert api_client.get(f"{API}{postmortem.pk}/").status_code == 404  # a draft is not in the library yet

    api_client.force_authenticate(owner)
    response = api_client.post(f"{API}{postmortem.pk}/submit/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "in_review"
    response = api_client.post(f"{API}{postmortem.pk}/approve/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_manager"

    api_client.force_authenticate(manager)
    assert api_client.post(f"{API}{postmortem.pk}/approve/", {"comment": "Clear."}).status_code == 200
    response = api_client.post(f"{API}{postmortem.pk}/publish/")
    assert response.json()["status"] == "published"
    assert response.json()["revisions"][0]["number"] == 1

    api_client.force_authenticate(outsider)
    response = api_client.get(f"{API}{postmortem.pk}/")
    assert response.status_code == 200
    assert response.json()["html"]["summary"].startswith("<p>")
    assert [row["id"] for row in api_client.get(API).json()["results"]] == [postmortem.pk]
    assert api_client.patch(f"{API}{postmortem.pk}/", {"summary": "x"}).status_code == 403


def test_api_author_manager_cannot_approve_own(db, api_client):
    author = UserFactory(username="author", groups=["Managers"])
    postmortem = ready(author)
    api_client.force_authenticate(author)
    api_client.post(f"{API}{postmortem.pk}/submit/")
    response = api_client.post(f"{API}{postmortem.pk}/approve/")
    assert response.status_code == 409
    assert response.json()["code"] == "own_postmortem"
    response = api_client.post(f"{API}{postmortem.pk}/publish/")
    assert response.status_code == 409
    assert "not the author" in response.json()["detail"]


def test_api_submit_names_missing_fields(owner_api, owner):
    postmortem = PostmortemFactory(owner=owner)
    response = owner_api.post(f"{API}{postmortem.pk}/submit/")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert {"summary", "contributing_factors"} <= set(body["errors"])


def test_api_edit_runs_lint_and_returns_warnings(owner_api, owner):
    postmortem = PostmortemFactory(owner=owner)
    response = owner_api.patch(f"{API}{postmortem.pk}/", {"went_badly": "We failed to notice.", "title": "New"})
    assert response.status_code == 200
    assert response.json()["lint_warnings"][0]["phrase"] == "failed to"
    assert response.json()["title"] == "New"
    response = owner_api.patch(f"{API}{postmortem.pk}/", {"owner": "nobody"})
    assert response.status_code == 400
    assert "owner" in response.json()["errors"]


def test_api_request_changes_needs_comment(api_client, owner, manager):
    postmortem = ready(owner)
    api_client.force_authenticate(owner)
    api_client.post(f"{API}{postmortem.pk}/submit/")
    api_client.force_authenticate(manager)
    response = api_client.post(f"{API}{postmortem.pk}/request-changes/", {"comment": ""})
    assert response.status_code == 400
    assert "comment" in response.json()["errors"]
    response = api_client.post(f"{API}{postmortem.pk}/request-changes/", {"comment": "Add detection."})
    assert response.json()["status"] == "draft"


def test_api_add_factor_and_action_item(owner_api, owner):
    postmortem = PostmortemFactory(owner=owner)
    response = owner_api.post(
        f"{API}{postmortem.pk}/factors/", {"category": "capacity", "description": "Pool too small"}
    )
    assert response.status_code == 201
    assert response.json()["contributing_factors"][0]["category"] == "capacity"
    response = owner_api.post(f"{API}{postmortem.pk}/factors/", {"category": "human", "description": "x"})
    assert response.status_code == 400
    assert "category" in response.json()["errors"]
    response = owner_api.post(
        f"{API}{postmortem.pk}/action-items/", {"title": "Raise pool size", "owner": "owner", "priority": "priority"}
    )
    assert response.status_code == 201
    assert response.json()["owner"] == "owner"


def test_api_library_filters(api_client, manager):
    team = TeamFactory(slug="payments")
    incident = IncidentFactory(service=ServiceFactory(team=team, slug="checkout"), severity="P1")
    mine = PostmortemFactory(incidents=[incident], title="Checkout errors")
    ContributingFactorFactory(postmortem=mine, category="capacity")
    PostmortemFactory(incidents=[IncidentFactory()], title="Other")
    api_client.force_authenticate(manager)
    for query in (
        "team=payments",
        "service=checkout",
        "severity=P1",
        "category=capacity",
        "q=checkout",
        f"q={incident.ref}",
    ):
        assert [row["id"] for row in api_client.get(f"{API}?{query}").json()["results"]] == [mine.pk], query
    response = api_client.get(f"{API}?month=2026-13")
    assert response.status_code == 400
    assert "month" in response.json()["errors"]


def test_api_postmortem_list_query_count_is_constant(manager_api):
    def run(count):
        for _ in range(count):
            PostmortemFactory(incidents=[IncidentFactory()])
        with CaptureQueriesContext(connection) as queries:
            assert manager_api.get(f"{API}?page_size=500").status_code == 200
        return len(queries)

    small = run(10)
    Postmortem.objects.all().delete()
    assert run(200) == small


def test_api_action_items_filters_and_owner_updates_status(api_client, owner, responder):
    team = TeamFactory(slug="platform")
    mine = ActionItemFactory(owner=owner, team=team, due_on=date(2020, 1, 1))
    other = ActionItemFactory(owner=responder, due_on=date(2999, 1, 1))
    api_client.force_authenticate(owner)
    assert [row["id"] for row in api_client.get(f"{ITEMS}?overdue=true").json()["results"]] == [mine.pk]
    assert [row["id"] for row in api_client.get(f"{ITEMS}?owner=responder").json()["results"]] == [other.pk]
    assert [row["id"] for row in api_client.get(f"{ITEMS}?team=platform&status=open").json()["results"]] == [mine.pk]

    response = api_client.patch(f"{ITEMS}{mine.pk}/", {"status": "done"})
    assert response.status_code == 200
    assert response.json()["completed_at"]
    response = api_client.patch(f"{ITEMS}{mine.pk}/", {"status": "wont_do"})
    assert response.status_code == 400
    assert "wont_do_reason" in response.json()["errors"]
    assert api_client.patch(f"{ITEMS}{other.pk}/", {"status": "done"}).status_code == 403
    assert api_client.patch(f"{ITEMS}{mine.pk}/", {"owner": "responder"}).status_code == 403  # managers reassign


def test_api_action_items_csv_export_for_sprint_planning(manager_api):
    team = TeamFactory(slug="payments")
    ActionItemFactory(team=team, title="Raise pool", priority="priority", tracker_url="https://tracker.example/T-1")
    ActionItemFactory(team=team, title="Closed one", status="done", completed_at="2026-01-01T00:00:00Z")
    ActionItemFactory(title="Other team")
    response = manager_api.get(f"{ITEMS}export/?team=payments")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0].startswith("team,priority,kind,title")
    assert len(lines) == 2
    assert "Raise pool" in lines[1]
    assert "https://tracker.example/T-1" in lines[1]


def test_api_action_item_list_query_count_is_constant(manager_api):
    def run(count):
        ActionItemFactory.create_batch(count)
        with CaptureQueriesContext(connection) as queries:
            assert manager_api.get(f"{ITEMS}?page_size=500").status_code == 200
        return len(queries)

    small = run(10)
    Postmortem.objects.all().delete()
    assert run(200) == small


def test_api_needs_sign_in(db, api_client):
    assert api_client.get(API).status_code in (401, 403)


def test_api_action_item_names_the_runbook_it_updates_and_the_game_day_it_came_from(owner_api, owner):
    from django.utils import timezone

    from incidents.models import GameDay
    from incidents.runbooks.services import runbook_create
    from postmortems.models import ActionItem, PostmortemEvent

    postmortem = PostmortemFactory(owner=owner)
    runbook = runbook_create(service=ServiceFactory(), title="Failover", body="steps", author=None)
    drill = GameDay.objects.create(title="Drill", hypothesis="It fails over", scheduled_for=timezone.now())

    response = owner_api.post(
        f"{API}{postmortem.pk}/action-items/", {"title": "Fix the failover runbook", "runbook": "nope"}
    )
    assert response.status_code == 400
    assert "runbook" in response.json()["errors"]
    assert not ActionItem.objects.exists()

    response = owner_api.post(
        f"{API}{postmortem.pk}/action-items/",
        {"title": "Fix the failover runbook", "owner": "owner", "runbook": runbook.slug, "game_day": drill.pk},
    )
    assert response.status_code == 201, response.content
    item = ActionItem.objects.get()
    assert (item.runbook, item.game_day) == (runbook, drill)
    assert (response.json()["runbook"], response.json()["game_day"]) == (runbook.slug, drill.pk)

    other = runbook_create(service=ServiceFactory(), title="Restore", body="steps", author=None)
    response = owner_api.patch(f"{ITEMS}{item.pk}/", {"runbook": other.slug})
    assert response.status_code == 200, response.content
    assert response.json()["runbook"] == other.slug
    change = PostmortemEvent.objects.filter(kind=PostmortemEvent.Kind.ACTION_ITEM_CHANGED).get()
    assert change.data["runbook"] == {"old": str(runbook), "new": str(other)}
    assert owner_api.get(f"{ITEMS}?page_size=5").json()["results"][0]["game_day"] == drill.pk


# --- approvals, amendments, revisions -------------------------------------------------------------------------------


def published(api_client, owner, manager, **kwargs):
    """A postmortem published through the API (revision 1), with the owner's client left signed in."""
    postmortem = ready(owner, incidents=[IncidentFactory()], **kwargs)
    api_client.force_authenticate(owner)
    assert api_client.post(f"{API}{postmortem.pk}/submit/").status_code == 200
    api_client.force_authenticate(manager)
    assert api_client.post(f"{API}{postmortem.pk}/approve/").status_code == 200
    assert api_client.post(f"{API}{postmortem.pk}/publish/").status_code == 200
    api_client.force_authenticate(owner)
    return postmortem


def test_api_patch_after_approval_withdraws_it(api_client, owner, manager):
    postmortem = ready(owner)
    api_client.force_authenticate(owner)
    api_client.post(f"{API}{postmortem.pk}/submit/")
    api_client.force_authenticate(manager)
    api_client.post(f"{API}{postmortem.pk}/approve/")
    api_client.force_authenticate(owner)

    response = api_client.patch(f"{API}{postmortem.pk}/", {"summary": "Rewritten after the approval."})
    assert response.status_code == 200
    assert response.json()["status"] == "in_review"
    assert response.json()["review_round"] == 2
    response = api_client.post(f"{API}{postmortem.pk}/publish/")
    assert response.status_code == 409
    assert response.json()["code"] == "postmortem_not_approved"

    api_client.force_authenticate(manager)
    api_client.post(f"{API}{postmortem.pk}/approve/")
    api_client.force_authenticate(owner)
    api_client.post(f"{API}{postmortem.pk}/factors/", {"category": "capacity", "description": "Pool too small"})
    assert api_client.post(f"{API}{postmortem.pk}/publish/").status_code == 409


def test_api_readers_see_the_published_revision_during_an_amendment(api_client, owner, manager):
    postmortem = published(api_client, owner, manager)
    published_summary = complete_sections()["summary"]
    assert api_client.post(f"{API}{postmortem.pk}/amend/", {"reason": "New factor found"}).status_code == 200
    response = api_client.patch(f"{API}{postmortem.pk}/", {"summary": "Work in progress.", "title": "WIP title"})
    assert response.status_code == 200
    api_client.post(f"{API}{postmortem.pk}/factors/", {"category": "capacity", "description": "Unreviewed factor"})

    reader = UserFactory(username="reader", groups=["Responders"])
    api_client.force_authenticate(reader)
    body = api_client.get(f"{API}{postmortem.pk}/").json()
    assert body["shown_revision"] == 1
    assert body["summary"] == published_summary
    assert body["title"] == postmortem.title
    assert body["html"]["summary"] == f"<p>{published_summary}</p>\n"
    assert [f["description"] for f in body["contributing_factors"]] == [
        "The connection limit was not validated before rollout."
    ]
    assert "Work in progress" not in str(body)
    assert [row["title"] for row in api_client.get(API).json()["results"]] == [postmortem.title]

    for involved in (owner, manager):  # the owner and a reviewer work on the amendment
        api_client.force_authenticate(involved)
        body = api_client.get(f"{API}{postmortem.pk}/").json()
        assert (body["shown_revision"], body["summary"]) == (None, "Work in progress.")
        assert [row["title"] for row in api_client.get(API).json()["results"]] == ["WIP title"]


def test_api_lists_and_returns_revisions(api_client, owner, manager):
    postmortem = published(api_client, owner, manager)
    api_client.post(f"{API}{postmortem.pk}/amend/", {"reason": "New factor found"})
    api_client.patch(f"{API}{postmortem.pk}/", {"summary": "Amended summary."})
    api_client.force_authenticate(manager)
    api_client.post(f"{API}{postmortem.pk}/approve/")
    api_client.post(f"{API}{postmortem.pk}/publish/")

    api_client.force_authenticate(UserFactory(username="reader", groups=["Responders"]))
    response = api_client.get(f"{API}{postmortem.pk}/revisions/")
    assert response.status_code == 200
    assert [(row["number"], row["published_by"]) for row in response.json()] == [(1, "manager"), (2, "manager")]
    first = api_client.get(f"{API}{postmortem.pk}/revisions/1/").json()
    assert first["sections"]["summary"] == complete_sections()["summary"]
    assert first["html"]["summary"].startswith("<p>Checkout returned errors")
    assert first["contributing_factors"] == [
        {"category": "configuration", "description": "The connection limit was not validated before rollout."}
    ]
    assert first["incidents"] == [postmortem.incidents.get().ref]
    assert api_client.get(f"{API}{postmortem.pk}/revisions/2/").json()["sections"]["summary"] == "Amended summary."
    assert api_client.get(f"{API}{postmortem.pk}/revisions/3/").status_code == 404
    assert api_client.get(f"{API}{postmortem.pk}/revisions/99999999999999999999/").status_code == 404
    draft = ready(owner)
    assert api_client.get(f"{API}{draft.pk}/revisions/").status_code == 404  # never published: not in the library


def test_api_revision_list_query_count_is_constant(manager_api, manager):
    from postmortems.models import PostmortemRevision

    postmortem = PostmortemFactory(status="published", published_at=datetime(2026, 3, 1, tzinfo=UTC))

    def run(count):
        start = postmortem.revisions.count()
        for number in range(start + 1, start + count + 1):
            PostmortemRevision.objects.create(
                postmortem=postmortem,
                number=number,
                published_at=postmortem.published_at,
                published_by=UserFactory(),
                content={"title": f"t{number}", "sections": {}, "contributing_factors": [], "incidents": []},
            )
        with CaptureQueriesContext(connection) as queries:
            response = manager_api.get(f"{API}{postmortem.pk}/revisions/")
        assert response.status_code == 200
        return len(queries)

    assert run(1) == run(30)


@pytest.mark.parametrize("month", ["10000-01", "0-01", "2026-00", "2026", "x-y"])
def test_api_library_month_filter_out_of_range_is_a_400(manager_api, month):
    response = manager_api.get(f"{API}?month={month}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"month": ["Use YYYY-MM, for example 2026-03."]}


def test_api_lowering_the_incident_severity_withdraws_the_untouched_draft(owner_api, owner):
    # through the incidents API, as a responder lowers it (the listener runs in incidents' severity change)
    from incidents.models import Incident

    incident = IncidentFactory(severity="P2", commander=owner, status=Incident.Status.RESOLVED)
    Incident.objects.filter(pk=incident.pk).update(resolved_at=incident.declared_at)
    postmortem = ready(owner, incidents=[incident])
    response = owner_api.patch(f"/api/v1/incidents/{incident.ref}/", {"severity": "P3"}, format="json")
    assert response.status_code == 200, response.json()
    postmortem.refresh_from_db()
    assert postmortem.status == "withdrawn"
    response = owner_api.patch(f"{API}{postmortem.pk}/", {"summary": "x"})
    assert response.status_code == 409
    assert response.json()["code"] == "postmortem_withdrawn"
    assert owner_api.post(f"/api/v1/incidents/{incident.ref}/close/").status_code == 200
