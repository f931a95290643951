"""Admin for integrations, alerts and maintenance windows; the create_integration command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.alerting import selectors
from incidents.models import Alert, AlertRoute, Integration, MaintenanceWindow
from tests.incidents.alerting_helpers import make_integration
from tests.incidents.factories import IncidentFactory, ServiceFactory

ALERTS = reverse("admin:incidents_alert_changelist")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def _alerts(count):
    services_ = ServiceFactory.create_batch(3)
    integrations = [make_integration(service, name=f"am-{service.pk}")[0] for service in services_]
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(
            integration=integrations[index % 3],
            service=services_[index % 3],
            fingerprint=f"f{index}",
            group_key="g",
            title=f"alert {index}",
            starts_at=now,
            received_at=now - timedelta(seconds=index),
            last_received_at=now,
            severity="P2",
            incident=IncidentFactory(service=services_[index % 3]) if index % 2 else None,
        )
        for index in range(count)
    )


def _changelist_queries(client, count, query=""):
    _alerts(count)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ALERTS + query)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("query", ["", "?status__exact=firing&severity__exact=P2", "?q=f3"])
def test_alert_changelist_query_count_is_constant(manager_client, query):
    small, _ = _changelist_queries(manager_client, 10, query)
    Alert.objects.all().delete()
    large, response = _changelist_queries(manager_client, 200, query)
    assert small == large
    assert large <= 15
    if not query:
        assert response.content.count(b'class="action-select"') == 0  # read-only: no actions
        assert response.content.decode().count("alert 1") >= 1


def test_integration_add_shows_the_key_once_and_saves_routes(manager_client, service):
    response = manager_client.post(
        reverse("admin:incidents_integration_add"),
        {
            "service": service.pk,
            "kind": "alertmanager",
            "name": "prod",
            "auto_resolve": "on",
            "rate_limit_per_minute": 120,
            "routes-TOTAL_FORMS": 1,
            "routes-INITIAL_FORMS": 0,
            "routes-0-position": 1,
            "routes-0-matchers": '{"severity": "=~crit.*"}',
            "routes-0-severity": "P0",
            "routes-0-flap_delay": "00:02:00",
        },
        follow=True,
    )

    assert response.status_code == 200
    integration = Integration.objects.get()
    assert (integration.name, integration.rate_limit_per_minute) == ("prod", 120)
    route = AlertRoute.objects.get()
    assert (route.integration, route.matchers, route.flap_delay) == (
        integration,
        {"severity": "=~crit.*"},
        timedelta(minutes=2),
    )
    shown = [str(message) for message in get_messages(response.wsgi_request)] or [response.content.decode()]
    text = " ".join(shown)
    key = text.split("/hooks/alertmanager/")[1].split("/")[0]
    assert selectors.integration_by_key(key=key, kind="alertmanager") == integration
    assert (
        key
        not in manager_client.get(reverse("admin:incidents_integration_change", args=[integration.pk])).content.decode()
    )


def test_integration_route_with_a_bad_regex_is_refused(manager_client, service):
    integration, _ = make_integration(service)
    response = manager_client.post(
        reverse("admin:incidents_integration_change", args=[integration.pk]),
        {
            "service": service.pk,
            "name": integration.name,
            "auto_resolve": "on",
            "rate_limit_per_minute": 600,
            "routes-TOTAL_FORMS": 1,
            "routes-INITIAL_FORMS": 0,
            "routes-0-position": 1,
            "routes-0-matchers": '{"team": "=~(unclosed"}',
            "routes-0-severity": "",
            "routes-0-flap_delay": "0",
        },
    )
    assert response.status_code == 200
    assert "invalid regular expression" in response.content.decode()
    assert AlertRoute.objects.count() == 0


def test_integration_regenerate_key_action(manager_client, service):
    integration, old_key = make_integration(service)
    response = manager_client.post(
        reverse("admin:incidents_integration_changelist"),
        {"action": "regenerate_keys", "_selected_action": [integration.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert selectors.integration_by_key(key=old_key, kind="alertmanager") is None
    text = " ".join(str(message) for message in get_messages(response.wsgi_request)) or response.content.decode()
    new_key = text.split("/hooks/alertmanager/")[1].split("/")[0]
    assert selectors.integration_by_key(key=new_key, kind="alertmanager") == integration


def test_maintenance_window_admin_records_who_created_it(manager_client, manager, service):
    response = manager_client.post(
        reverse("admin:incidents_maintenancewindow_add"),
        {
            "service": service.pk,
            "starts_at_0": "2026-11-28",
            "starts_at_1": "01:00:00",
            "ends_at_0": "2026-11-28",
            "ends_at_1": "03:00:00",
            "reason": "Database upgrade",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert MaintenanceWindow.objects.get().created_by == manager


def test_create_integration_prints_the_url(service, settings):
    settings.FIREBREAK_BASE_URL = "https://firebreak.example.com"
    out = StringIO()
    call_command("create_integration", "--service", "checkout", "--kind", "alertmanager", stdout=out)

    url = out.getvalue().strip()
    assert url.startswith("https://firebreak.example.com/hooks/alertmanager/")
    key = url.rstrip("/").rsplit("/", 1)[1]
    assert selectors.integration_by_key(key=key, kind="alertmanager").service == service


def test_create_integration_prints_the_routing_key_for_pagerduty(service):
    out = StringIO()
    call_command(
        "create_integration", "--service", "checkout", "--kind", "pagerduty_v2", "--name", "grafana", stdout=out
    )

    lines = out.getvalue().splitlines()
    key = lines[0].removeprefix("routing key: ")
    assert lines[1].endswith("/hooks/pagerduty/v2/enqueue")
    integration = selectors.integration_by_key(key=key, kind="pagerduty_v2")
    assert integration.name == "grafana"


def test_create_integration_refuses_unknown_service_and_duplicate_name(service):
    with pytest.raises(CommandError, match="No service"):
        call_command("create_integration", "--service", "nope", "--kind", "generic")
    call_command("create_integration", "--service", "checkout", "--kind", "generic", stdout=StringIO())
    with pytest.raises(CommandError, match="name"):
        call_command("create_integration", "--service", "checkout", "--kind", "generic")


def test_alert_noise_page_lists_the_noisiest_alerts(manager_client, client, service):
    from tests.incidents.alerting_helpers import alertmanager_url, post_json, reference

    _, key = make_integration(service)
    for _ in range(3):
        post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    assert 'href="/admin/incidents/alert/noise/"' in manager_client.get(ALERTS).content.decode()

    response = manager_client.get(reverse("admin:incidents_alert_noise") + "?days=30")

    assert response.status_code == 200
    content = response.content.decode()
    assert "HighErrorRate" in content
    assert "<td>3</td><td>1</td><td>2</td>" in content  # notifications, alerts, deduplicated


def test_alert_noise_page_needs_view_permission(client, db):
    from tests.oncall.factories import UserFactory

    client.force_login(UserFactory(username="staff-without-groups"))
    assert client.get(reverse("admin:incidents_alert_noise")).status_code == 403


@pytest.mark.parametrize("model", ["integration", "maintenancewindow"])
def test_integration_and_maintenance_changelists_query_count_is_constant(manager_client, manager, model):
    def make(count):
        for _ in range(count):
            service = ServiceFactory()
            make_integration(service)
            now = timezone.now()
            MaintenanceWindow.objects.create(
                service=service, starts_at=now, ends_at=now + timedelta(hours=1), reason="x", created_by=manager
            )
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get(reverse(f"admin:incidents_{model}_changelist")).status_code == 200
        return len(queries)

    small = make(5)
    large = make(60)
    assert small == large
