import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from incidents.models import Incident, IncidentEvent
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import UserFactory


def declare(client, **overrides):
    body = {"title": "Checkout is down", "severity": "P1", "service": "checkout", **overrides}
    return client.post("/api/v1/incidents/", body, format="json")


def test_api_declare_acknowledge_mitigate_resolve(responder_api, service):
    response = declare(responder_api)
    assert response.status_code == 201, response.json()
    ref = response.json()["ref"]
    assert response.json()["channel"].startswith(ref.lower())

    for action in ("acknowledge", "mitigate", "resolve"):
        response = responder_api.post(f"/api/v1/incidents/{ref}/{action}/", format="json")
        assert response.status_code == 200, response.json()

    body = response.json()
    assert body["status"] == "resolved"
    for stamp in ("declared_at", "acknowledged_at", "mitigated_at", "resolved_at"):
        assert body[stamp] is not None
    timeline = responder_api.get(f"/api/v1/incidents/{ref}/timeline/").json()
    transitions = [e["kind"] for e in timeline if e["kind"] not in ("role_assigned", "escalation_stopped")]
    assert transitions == ["declared", "acknowledged", "mitigated", "resolved"]


def test_api_acknowledge_again_changes_nothing(responder_api, service):
    ref = declare(responder_api).json()["ref"]
    first = responder_api.post(f"/api/v1/incidents/{ref}/acknowledge/").json()
    events = IncidentEvent.objects.count()

    second = responder_api.post(f"/api/v1/incidents/{ref}/acknowledge/")

    assert second.status_code == 200
    assert second.json()["acknowledged_at"] == first["acknowledged_at"]
    assert IncidentEvent.objects.count() == events


def test_api_resolving_a_cancelled_incident_is_409(responder_api, service):
    ref = declare(responder_api).json()["ref"]
    response = responder_api.post(
        f"/api/v1/incidents/{ref}/cancel/", {"closure_reason": "false_positive"}, format="json"
    )
    assert response.status_code == 200

    response = responder_api.post(f"/api/v1/incidents/{ref}/resolve/")

    assert response.status_code == 409
    assert response.json()["code"] == "incident_cancelled"
    assert "cancelled" in response.json()["detail"]
    assert Incident.objects.get(ref=ref).resolved_at is None


def test_api_backfill_breaking_order_is_400_naming_the_field(manager_api, service):
    ref = declare(manager_api).json()["ref"]
    incident = Incident.objects.get(ref=ref)
    too_early = (incident.started_at - timedelta(hours=1)).isoformat()

    response = manager_api.post(f"/api/v1/incidents/{ref}/times/", {"detected_at": too_early}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "detected_at" in body["errors"]
    assert body["detail"].startswith("detected_at")
    incident.refresh_from_db()
    assert incident.detected_at > incident.started_at - timedelta(minutes=1)
    assert not incident.events.filter(kind="times_corrected").exists()


def test_api_backfill_records_old_and_new(manager_api, service):
    ref = declare(manager_api).json()["ref"]
    incident = Incident.objects.get(ref=ref)
    earlier = incident.started_at - timedelta(minutes=40)
    response = manager_api.post(
        f"/api/v1/incidents/{ref}/times/", {"started_at": earlier.isoformat(), "reason": "from logs"}, format="json"
    )
    assert response.status_code == 200
    event = incident.events.get(kind="times_corrected")
    assert event.data["started_at"]["new"] == earlier.isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"severity": "P7"}, "severity"),
        ({"service": "nope"}, "service"),
        ({"title": ""}, "title"),
        ({"started_at": "yesterday"}, "started_at"),
    ],
)
def test_api_declare_bad_input_is_400_naming_the_field(responder_api, service, body, field):
    response = declare(responder_api, **body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Incident.objects.count() == 0


def test_api_declare_in_the_future_is_400(responder_api, service):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    response = declare(responder_api, detected_at=future)
    assert response.status_code == 400
    assert "detected_at" in response.json()["errors"]


def test_api_malformed_json_is_400(responder_api, service):
    response = responder_api.post("/api/v1/incidents/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_api_requires_authentication(api_client, service):
    assert api_client.get("/api/v1/incidents/").status_code in (401, 403)
    assert declare(api_client).status_code in (401, 403)


def test_api_token_authentication(api_client, responder, service):
    token = Token.objects.create(user=responder)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert declare(api_client).status_code == 201


def test_api_user_without_group_can_read_but_not_declare(api_client, service):
    api_client.force_authenticate(UserFactory(is_staff=False))
    assert api_client.get("/api/v1/incidents/").status_code == 200
    assert declare(api_client).status_code == 403


def test_api_status_updates_and_roles(responder_api, responder, manager, service):
    ref = declare(responder_api).json()["ref"]
    response = responder_api.post(
        f"/api/v1/incidents/{ref}/updates/", {"message": "Rolling back", "audience": "stakeholders"}, format="json"
    )
    assert response.status_code == 201
    assert responder_api.get(f"/api/v1/incidents/{ref}/updates/").json()[0]["message"] == "Rolling back"

    response = responder_api.post(f"/api/v1/incidents/{ref}/roles/", {"role": "comms_lead", "user": "manager"})
    assert response.status_code == 200
    assert response.json()["comms_lead"] == "manager"


def test_api_list_filters(responder_api, db):
    payments, platform = ServiceFactory(slug="pay"), ServiceFactory(slug="plat")
    IncidentFactory(service=payments, severity="P0", status="triggered")
    IncidentFactory(service=payments, severity="P2", status="resolved", resolved_at=timezone.now())
    IncidentFactory(service=platform, severity="P0", status="acknowledged", acknowledged_at=timezone.now())

    def refs(query):
        return len(responder_api.get(f"/api/v1/incidents/?{query}").json()["results"])

    assert refs("") == 3
    assert refs("severity=P0") == 2
    assert refs("status=triggered&status=acknowledged") == 2
    assert refs("service=pay") == 2
    assert refs(f"team={platform.team.slug}") == 1
    assert refs("severity=P0&service=pay") == 1
    response = responder_api.get("/api/v1/incidents/?severity=P9")
    assert response.status_code == 400
    assert "severity" in response.json()["errors"]


def _list_queries(client, count):
    service = ServiceFactory()
    commander = UserFactory()
    IncidentFactory.create_batch(count, service=service, commander=commander)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/incidents/?page_size=500")
    assert response.status_code == 200
    assert len(response.json()["results"]) == count
    return len(queries)


def test_api_list_query_count_is_constant(responder_api, db):
    small = _list_queries(responder_api, 10)
    Incident.objects.all().delete()
    large = _list_queries(responder_api, 500)
    assert small == large
    assert large <= 6


def test_schema_and_docs_render(responder_api, client, responder):
    schema = responder_api.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/incidents/{ref}/acknowledge/" in schema.content
    assert client.get("/api/schema/").status_code == 403  # schema and Swagger UI need a login (docs/security.md)
    anonymous = client.get("/api/docs/")  # a page for people: to the login page, and back after it
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/api/docs/"
    client.force_login(responder)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"drf_spectacular_sidecar/swagger-ui-dist" in docs.content


def test_api_unknown_incident_is_404_in_the_error_format(responder_api, db):
    response = responder_api.post("/api/v1/incidents/INC-1999-1/acknowledge/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_api_responder_cannot_correct_times(responder_api, manager, service):
    """Managers correct incident times (README, docs/security.md): a responder's correction is 403, changes
    nothing and leaves no timeline event."""
    ref = declare(responder_api).json()["ref"]
    incident = Incident.objects.get(ref=ref)
    earlier = incident.started_at - timedelta(minutes=40)

    response = responder_api.post(f"/api/v1/incidents/{ref}/times/", {"started_at": earlier.isoformat()}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only managers correct incident times."
    assert Incident.objects.get(ref=ref).started_at == incident.started_at
    assert not incident.events.filter(kind="times_corrected").exists()
    responder_api.force_authenticate(manager)
    ok = responder_api.post(f"/api/v1/incidents/{ref}/times/", {"started_at": earlier.isoformat()}, format="json")
    assert ok.status_code == 200


def _database_error(sql: str):
    """The error Django raises for `sql` on the real PostgreSQL (the test's transaction survives it)."""
    from django.db import OperationalError, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    except OperationalError as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize(("sqlstate", "name"), [("40P01", "deadlock_detected"), ("40001", "serialization_failure")])
def test_middleware_a_deadlock_is_a_concurrent_change_not_an_outage(db, rf, sqlstate, name):
    from config.middleware import DatabaseUnavailableMiddleware

    error = _database_error(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{name}'; END $$")
    assert error.__cause__.sqlstate == sqlstate
    response = DatabaseUnavailableMiddleware(lambda r: None).process_exception(
        rf.post("/api/v1/incidents/INC-2026-1/acknowledge/"), error
    )
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["code"] == "concurrent_change"
    assert "unavailable" not in body["detail"]
    assert "nothing was saved" in body["detail"]
    assert "deadlock" not in body["detail"]  # no database error text reaches the user


def test_middleware_a_lost_database_is_still_unavailable(db, rf):
    from config.middleware import DatabaseUnavailableMiddleware

    # what a PostgreSQL restart sends to its sessions (57P01)
    error = _database_error("DO $$ BEGIN RAISE EXCEPTION 'terminating' USING ERRCODE = 'admin_shutdown'; END $$")
    response = DatabaseUnavailableMiddleware(lambda r: None).process_exception(rf.get("/api/v1/incidents/"), error)
    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "database_unavailable"


def test_api_declare_with_repeat_of_links_the_earlier_incident(responder_api, service):
    earlier = IncidentFactory(service=service, status="closed")
    response = declare(responder_api, repeat_of=earlier.ref)
    assert response.status_code == 201, response.json()
    assert response.json()["repeat_of"] == earlier.ref
    assert Incident.objects.get(ref=response.json()["ref"]).repeat_of == earlier


def test_api_declare_with_unknown_repeat_of_is_400_naming_the_field(responder_api, service):
    response = declare(responder_api, repeat_of="INC-1999-404")
    assert response.status_code == 400
    assert response.json()["errors"] == {"repeat_of": ["No incident INC-1999-404."]}
    assert not Incident.objects.exists()


def test_api_patch_repeat_of_sets_refuses_itself_and_clears(responder_api, service):
    earlier = IncidentFactory(service=service, status="closed")
    ref = declare(responder_api).json()["ref"]
    response = responder_api.patch(f"/api/v1/incidents/{ref}/", {"repeat_of": earlier.ref}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["repeat_of"] == earlier.ref

    response = responder_api.patch(f"/api/v1/incidents/{ref}/", {"repeat_of": ref}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["repeat_of"]
    assert Incident.objects.get(ref=ref).repeat_of == earlier

    response = responder_api.patch(f"/api/v1/incidents/{ref}/", {"repeat_of": None}, format="json")
    assert response.status_code == 200
    assert response.json()["repeat_of"] is None


def test_api_patch_a_closed_incident_is_409(responder_api, service):
    incident = IncidentFactory(service=service, status="closed", title="Old")
    response = responder_api.patch(f"/api/v1/incidents/{incident.ref}/", {"title": "New"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == f"{incident.ref} is closed; it cannot be edited."
    incident.refresh_from_db()
    assert incident.title == "Old"


def test_api_declare_future_detected_at_is_400_with_a_readable_message(responder_api, service):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    response = declare(responder_api, detected_at=future)
    assert response.status_code == 400
    message = response.json()["errors"]["detected_at"][0]
    assert message.startswith("Detected at (")
    assert " UTC) cannot be in the future" in message
