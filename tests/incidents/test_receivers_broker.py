"""A broker that hangs or is down never holds up an alert request: publishing happens after the response, from
the publisher's thread (oncall.queueing); the sweeps queue what could not be published."""

import threading
import time

from celery.app.task import Task

from incidents.models import Alert, Incident
from tests.incidents.alerting_helpers import alertmanager_url, make_integration, post_json, reference


def test_an_alert_request_never_waits_on_a_hung_broker(
    client, service, monkeypatch, django_capture_on_commit_callbacks
):
    _, key = make_integration(service, "alertmanager")
    release = threading.Event()
    publishing_threads = []

    def hung_broker(self, args=None, kwargs=None, **options):  # the outside world: a broker that never answers
        publishing_threads.append((self.name, threading.get_ident()))
        release.wait(timeout=10)

    monkeypatch.setattr(Task, "apply_async", hung_broker)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, alertmanager_url(key), reference("alertmanager-firing.json"))
    release.set()  # the request has answered: let the broker go
    deadline = time.monotonic() + 30
    while "incidents.response.prepare_incident_response_task" not in [n for n, _ in publishing_threads]:
        assert time.monotonic() < deadline, publishing_threads
        time.sleep(0.05)

    assert response.status_code == 200
    assert (Alert.objects.count(), Incident.objects.count()) == (1, 1)
    assert threading.get_ident() not in [ident for _, ident in publishing_threads]  # never the request's thread
