"""The whole story in a real browser: a responder declares, acknowledges and resolves an incident in the
admin, writes the postmortem and submits it; a manager approves and publishes it. No CSP violation or
console error on any page, Swagger UI included. FIREBREAK_SCREENSHOTS=1 saves screenshots to docs/."""

import pytest

from incidents.models import Incident
from postmortems.models import Postmortem
from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct-horse-battery"  # the factories' password


def _sections(page) -> None:
    texts = {
        "summary": "Checkout requests failed for a share of customers after a configuration change.",
        "impact": "About one in ten checkout attempts failed for 25 minutes.",
        "timeline": "10:02 change deployed; 10:05 alert fired; 10:09 acknowledged; 10:27 rolled back.",
        "detection": "The error-rate alert on the checkout service fired three minutes after the change.",
        "trigger": "A connection-pool limit lowered by a configuration change.",
        "resolution": "The configuration change was rolled back.",
        "lessons": "Configuration changes to pool limits need a canary stage like code changes do.",
    }
    for name, text in texts.items():
        page.page.fill(f"#id_{name}", text)


def test_declare_acknowledge_resolve_and_publish_postmortem(open_page):
    team = TeamFactory(name="Payments", slug="payments")
    ServiceFactory(name="Checkout", slug="checkout", team=team)
    UserFactory(username="manager", groups=["Managers"], first_name="Mona", last_name="Manager")
    UserFactory(username="responder", groups=["Responders"], first_name="Rae", last_name="Responder")

    # the responder declares, acknowledges and resolves
    responder = open_page()
    responder.login("responder", PASSWORD)
    responder.shot("admin-index-responder")
    responder.goto("/admin/incidents/incident/add/")
    responder.page.fill("#id_title", "Checkout errors after config change")
    responder.page.select_option("#id_severity", "P2")
    responder.select2(".field-service", "Checkout")
    responder.shot("incident-declare")
    responder.page.click("input[name=_save]")
    incident = Incident.objects.get(title="Checkout errors after config change")
    assert incident.status == Incident.Status.TRIGGERED
    assert incident.created_by.username == "responder"

    responder.goto(f"/admin/incidents/incident/{incident.pk}/change/")
    responder.page.click("input[type=submit][value=Acknowledge]")
    responder.page.wait_for_load_state()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    responder.shot("incident-acknowledged")
    responder.page.click("input[type=submit][value=Resolve]")
    responder.page.wait_for_load_state()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    responder.shot("incident-resolved")

    # resolving a P2 drafted a postmortem for the commander (the responder, who acknowledged)
    postmortem = Postmortem.objects.get(incidents=incident)
    assert postmortem.status == Postmortem.Status.DRAFT
    responder.goto(f"/admin/postmortems/postmortem/{postmortem.pk}/change/")
    _sections(responder)
    responder.page.click("#factors-group .add-row a")
    responder.page.fill("#id_factors-0-description", "Pool limits are not covered by the canary stage.")
    responder.page.select_option("#id_factors-0-category", index=1)
    responder.page.click("#action_items-group .add-row a")
    responder.page.fill("#id_action_items-0-title", "Add pool limits to the canary checks")
    responder.select2("#action_items-0", "responder")
    responder.page.fill("#id_action_items-0-due_on", "2030-01-31")
    responder.shot("postmortem-draft")
    responder.page.click("input[name=_continue]")
    responder.page.wait_for_load_state()
    assert postmortem.factors.count() == 1
    assert postmortem.action_items.count() == 1
    responder.page.click("input[type=submit][value='Submit for review']")
    responder.page.wait_for_load_state()
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.IN_REVIEW, responder.page.content()[:2000]

    # the manager approves and publishes
    manager = open_page()
    manager.login("manager", PASSWORD)
    manager.goto(f"/admin/postmortems/postmortem/{postmortem.pk}/change/")
    manager.shot("postmortem-in-review")
    manager.page.click("input[type=submit][value=Approve]")
    manager.page.wait_for_load_state()
    manager.page.click("input[type=submit][value=Publish]")
    manager.page.wait_for_load_state()
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.PUBLISHED
    manager.shot("postmortem-published")

    manager.goto("/admin/admin/logentry/")
    manager.shot("audit-log")

    assert responder.problems == []
    assert manager.problems == []


def test_swagger_ui_and_admin_render_without_csp_violations(open_page):
    UserFactory(username="manager", groups=["Managers"])
    page = open_page()
    page.login("manager", PASSWORD)
    page.goto("/api/docs/")
    page.page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    page.page.wait_for_selector(".opblock", timeout=20_000)
    page.shot("swagger", full_page=False)
    page.goto("/admin/incidents/incident/")
    page.goto("/admin/oncall/rotation/add/")
    assert page.problems == []
