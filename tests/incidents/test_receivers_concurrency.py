"""Concurrent posts of the same alert (Alertmanager HA pairs send each notification twice): one alert row,
one incident. Each thread has its own database connection, as web processes do."""

from django.test import Client

from incidents.alerting import services
from incidents.models import Alert, Incident
from tests.concurrency import at_once
from tests.incidents.alerting_helpers import alertmanager_url, post_json, reference
from tests.incidents.factories import ServiceFactory


def test_receiver_concurrent_identical_posts_make_one_alert_and_one_incident(transactional_db):
    service = ServiceFactory(slug="checkout")
    _, key = services.integration_create(service=service, kind="alertmanager")
    payload = reference("alertmanager-firing.json")
    statuses, errors = at_once(8, lambda: post_json(Client(), alertmanager_url(key), payload).status_code)

    assert errors == []
    assert statuses == [200] * 8
    assert Alert.objects.get().repeat_count == 8
    assert Incident.objects.count() == 1
