"""REST API for alerts and integrations."""

import pytest

from incidents.alerting import selectors
from incidents.models import Alert, Incident, Integration
from tests.incidents.alerting_helpers import alertmanager_url, make_integration, post_json, reference
from tests.incidents.factories import ServiceFactory


def test_alert_api_lists_and_filters(client, responder_api, service):
    _, key = make_integration(service)
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    info = reference("alertmanager-firing.json")
    info["alerts"][0].update(fingerprint="i1")
    info["alerts"][0]["labels"]["severity"] = "info"
    post_json(client, alertmanager_url(key), info)

    ref = Incident.objects.get().ref
    everything = responder_api.get("/api/v1/alerts/").json()["results"]
    assert [row["fingerprint"] for row in everything] == ["i1", "7d2d332feada5c59"]
    firing = everything[1]
    assert (firing["severity"], firing["service"], firing["incident"]) == ("P1", "checkout", ref)

    suppressed = responder_api.get("/api/v1/alerts/?suppressed=informational").json()["results"]
    assert [row["fingerprint"] for row in suppressed] == ["i1"]
    by_incident = responder_api.get(f"/api/v1/alerts/?incident={ref}").json()["results"]
    assert [row["fingerprint"] for row in by_incident] == ["7d2d332feada5c59"]


def test_alert_api_query_count_is_constant(responder_api, django_assert_max_num_queries, client):
    for index in range(20):
        service = ServiceFactory()
        _, key = make_integration(service)
        payload = reference("alertmanager-firing.json")
        payload["alerts"][0]["fingerprint"] = f"f{index}"
        post_json(client, alertmanager_url(key), payload)
    with django_assert_max_num_queries(4):
        response = responder_api.get("/api/v1/alerts/")
    assert len(response.json()["results"]) == 20


def test_integration_api_create_returns_the_key_once(manager_api, service):
    response = manager_api.post("/api/v1/integrations/", {"service": "checkout", "kind": "generic"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["endpoint"].endswith(f"/hooks/generic/{body['key']}/")
    integration = Integration.objects.get()
    assert selectors.integration_by_key(key=body["key"], kind="generic") == integration
    listed = manager_api.get("/api/v1/integrations/").json()
    assert "key" not in listed[0]
    assert body["key"] not in str(listed)

    again = manager_api.post(f"/api/v1/integrations/{integration.pk}/regenerate-key/").json()
    assert again["key"] != body["key"]
    assert selectors.integration_by_key(key=body["key"], kind="generic") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service": "checkout", "kind": "nagios"}, "kind"),
        ({"service": "nope", "kind": "generic"}, "service"),
        ({"service": "checkout", "kind": "generic", "rate_limit_per_minute": 0}, "rate_limit_per_minute"),
    ],
)
def test_integration_api_bad_input_is_400_naming_the_field(manager_api, service, body, field):
    response = manager_api.post("/api/v1/integrations/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_integration_api_duplicate_name_is_400(manager_api, service):
    make_integration(service, "generic")
    response = manager_api.post("/api/v1/integrations/", {"service": "checkout", "kind": "generic"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_integration_api_responders_cannot_create(responder_api, service):
    response = responder_api.post("/api/v1/integrations/", {"service": "checkout", "kind": "generic"}, format="json")
    assert response.status_code == 403
    assert Integration.objects.count() == 0
    assert Alert.objects.count() == 0


def test_schema_includes_alert_endpoints(responder_api):
    schema = responder_api.get("/api/schema/")
    assert b"/api/v1/alerts/" in schema.content
    assert b"/api/v1/integrations/{id}/regenerate-key/" in schema.content


def test_schema_generates_without_warnings(db, tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml"))
