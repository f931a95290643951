"""Receiver rate limits seen from the outside: over the per-integration limit the answer is 429 with
Retry-After, and the refused alerts are not stored."""

import json

import pytest

from incidents.alerting import services as alerting_services
from incidents.models import Alert, Integration
from tests.incidents.factories import ServiceFactory


@pytest.mark.django_db
def test_generic_receiver_answers_429_over_the_limit_and_stores_nothing_more(client):
    _, key = alerting_services.integration_create(
        service=ServiceFactory(), kind=Integration.Kind.GENERIC, name="limited", rate_limit_per_minute=3
    )
    url = f"/hooks/generic/{key}/"
    statuses = []
    for number in range(5):
        body = {"title": f"Disk almost full {number}", "dedup_key": f"disk-{number}", "severity": "error"}
        statuses.append(client.post(url, data=json.dumps(body), content_type="application/json"))
    assert [response.status_code for response in statuses] == [200, 200, 200, 429, 429]
    assert int(statuses[3]["Retry-After"]) > 0
    assert statuses[3].json()["code"] == "rate_limited"
    assert Alert.objects.count() == 3
