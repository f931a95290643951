"""Routing: label matchers, first match wins, the default severity mapping, routes through HTTP."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from incidents.alerting import routing
from incidents.models import Alert, AlertRoute, Incident
from tests.incidents.alerting_helpers import alertmanager_url, make_integration, post_json, reference
from tests.incidents.factories import ServiceFactory


@pytest.mark.parametrize(
    ("matchers", "labels", "expected"),
    [
        ({}, {"a": "b"}, True),
        ({"severity": "critical"}, {"severity": "critical"}, True),
        ({"severity": "critical"}, {"severity": "warning"}, False),
        ({"team": "=~pay.*"}, {"team": "payments"}, True),
        ({"team": "=~pay.*"}, {"team": "repay"}, False),  # anchored at both ends
        ({"team": "!~pay.*"}, {"team": "search"}, True),
        ({"team": "!~pay.*"}, {"team": "payments"}, False),
        ({"env": "!=staging"}, {"env": "prod"}, True),
        ({"env": "!=staging"}, {"env": "staging"}, False),
        ({"env": "!=staging"}, {}, True),  # a missing label is ""
        ({"env": ""}, {}, True),
        ({"severity": "critical", "team": "=~pay.*"}, {"severity": "critical", "team": "search"}, False),
    ],
)
def test_routing_matches(matchers, labels, expected):
    assert routing.matches(matchers, labels) is expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("p0", "P0"),
        ("emergency", "P0"),
        ("critical", "P1"),
        ("CRITICAL", "P1"),
        ("page", "P1"),
        ("error", "P2"),
        ("high", "P2"),
        ("warning", "P3"),
        ("ticket", "P3"),
        ("info", None),
        ("none", None),
        ("", "P3"),
        ("something-else", "P3"),
    ],
)
def test_routing_default_severity_mapping(label, expected):
    labels = {"severity": label} if label else {}
    assert routing.severity_from_labels(labels) == expected


@pytest.mark.parametrize("matchers", [["severity"], {"team": "=~(unclosed"}, {"team": 3}])
def test_routing_validate_matchers_names_the_field(matchers):
    with pytest.raises(ValidationError) as caught:
        routing.validate_matchers(matchers)
    assert "matchers" in caught.value.message_dict


def test_routing_first_matching_route_wins_and_sets_severity_and_service(client, service):
    integration, key = make_integration(service, "alertmanager")
    payments = ServiceFactory(slug="payments")
    AlertRoute.objects.create(integration=integration, position=2, matchers={"service": "=~check.*"}, severity="P3")
    AlertRoute.objects.create(
        integration=integration, position=1, matchers={"alertname": "HighErrorRate"}, severity="P0", service=payments
    )

    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))

    alert = Alert.objects.get()
    assert alert.route.position == 1
    incident = Incident.objects.get()
    assert (incident.severity, incident.service) == ("P0", payments)


def test_routing_route_without_severity_uses_the_label_mapping(client, service):
    integration, key = make_integration(service, "alertmanager")
    route = AlertRoute.objects.create(integration=integration, position=1, matchers={"severity": "!=info"})
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    alert = Alert.objects.get()
    assert (alert.route, alert.severity) == (route, "P1")


def test_routing_route_with_no_incident_stores_only(client, service):
    integration, key = make_integration(service, "alertmanager")
    AlertRoute.objects.create(integration=integration, position=1, matchers={}, severity="none")
    post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    assert Alert.objects.get().suppressed == "informational"
    assert Incident.objects.count() == 0


def test_routing_no_route_matches_falls_back_to_defaults(service):
    integration, _ = make_integration(service, "alertmanager")
    AlertRoute.objects.create(
        integration=integration, position=1, matchers={"team": "search"}, flap_delay=timedelta(minutes=2)
    )
    decision = routing.route_alert(
        integration=integration,
        routes=routing.integration_routes(integration=integration),
        labels={"severity": "warning"},
    )
    assert (decision.route_id, decision.service, decision.severity, decision.flap_delay) == (
        None,
        service,
        "P3",
        timedelta(0),
    )
