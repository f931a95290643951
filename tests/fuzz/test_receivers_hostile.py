"""Webhook receivers fed malformed, truncated, wrong-type and huge bodies: 4xx only, nothing stored."""

import json

import pytest

from incidents.alerting import services as alerting_services
from incidents.models import Alert, Incident, Integration
from tests.incidents.factories import ServiceFactory

HOSTILE_BODIES = [
    b"",
    b"{",
    b'{"alerts": [',
    b"null",
    b"[]",
    b"42",
    b'"a string"',
    b"\xff\xfe\x00garbage",
    b'{"alerts": "not a list"}',
    b'{"alerts": [42]}',
    b'{"alerts": [{"labels": "x"}]}',
    b'{"alerts": [{"status": "firing", "labels": {"alertname": 1}, "startsAt": "yesterday"}]}',
    b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {}}]}',
    b'{"title": ["list"], "severity": {}}',
    b'{"title": "' + b"x" * 5000 + b'"}',
    b'{"event_action": "trigger", "payload": "nope"}',
    b'{"event_action": "explode", "payload": {"summary": "s", "source": "s", "severity": "critical"}}',
    b'{"event_action": "trigger", "payload": {"summary": 5, "source": [], "severity": "worst"}}',
    json.dumps({"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode(),
    b"[" * 100_000 + b"]" * 100_000,
]
HUGE = b'{"alerts": [' + b'{"labels": {"a": "' + b"x" * (1024 * 1024 + 10) + b'"}}]}'


@pytest.fixture
def keys(db):
    service = ServiceFactory()
    return {
        kind: alerting_services.integration_create(service=service, kind=kind, name=kind)[1]
        for kind in (Integration.Kind.ALERTMANAGER, Integration.Kind.GENERIC, Integration.Kind.PAGERDUTY_V2)
    }


def _targets(keys, body: bytes):
    yield f"/hooks/alertmanager/{keys['alertmanager']}/", body
    yield f"/hooks/generic/{keys['generic']}/", body
    try:  # PagerDuty carries the key in the body: put it there when the body is an object
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        body = json.dumps({**data, "routing_key": keys["pagerduty_v2"]}).encode()
    yield "/hooks/pagerduty/v2/enqueue", body


def _counts():
    return Alert.objects.count(), Incident.objects.count()


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_receivers_refuse_hostile_bodies_and_store_nothing(client, keys, body):
    before = _counts()
    for url, payload in _targets(keys, body):
        response = client.post(url, data=payload, content_type="application/json")
        assert 400 <= response.status_code < 500, (url, response.status_code, response.content[:200])
    assert _counts() == before


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"])
def test_receivers_refuse_bodies_over_one_megabyte(client, keys, content_type):
    before = _counts()
    for url, _ in _targets(keys, b"{}"):
        response = client.post(url, data=HUGE, content_type=content_type)
        assert response.status_code == 413, url
    assert _counts() == before


def test_receivers_refuse_a_wrong_key_and_wrong_methods(client, keys):
    before = _counts()
    assert client.post("/hooks/generic/not-a-key/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get(f"/hooks/generic/{keys['generic']}/").status_code == 405
    assert client.put(f"/hooks/alertmanager/{keys['alertmanager']}/", data=b"{}").status_code == 405
    assert _counts() == before
