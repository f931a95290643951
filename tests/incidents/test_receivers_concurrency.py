"""Concurrent posts of the same alert (Alertmanager HA pairs send each notification twice): one alert row,
one incident. Each thread has its own database connection, as web processes do."""

import threading

from django.db import connection
from django.test import Client

from incidents.alerting import services
from incidents.models import Alert, Incident
from tests.incidents.alerting_helpers import alertmanager_url, post_json, reference
from tests.incidents.factories import ServiceFactory


def test_receiver_concurrent_identical_posts_make_one_alert_and_one_incident(transactional_db):
    service = ServiceFactory(slug="checkout")
    _, key = services.integration_create(service=service, kind="alertmanager")
    payload = reference("alertmanager-firing.json")
    statuses = []
    start = threading.Barrier(8)

    def post():
        try:
            start.wait()
            statuses.append(post_json(Client(), alertmanager_url(key), payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 8
    assert Alert.objects.get().repeat_count == 8
    assert Incident.objects.count() == 1
