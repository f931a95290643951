"""The noise report: per integration and alert name, received, deduplicated, suppressed, no incident, useful."""

from datetime import UTC, datetime, timedelta

import time_machine

from incidents import services as incident_services
from incidents.alerting import selectors
from incidents.models import AlertRoute, Incident
from tests.incidents.alerting_helpers import alertmanager_url, make_integration, post_json, reference

NOW = datetime(2026, 11, 27, 9, 12, 0, tzinfo=UTC)


def _firing(name, fingerprint, severity="critical"):
    payload = reference("alertmanager-firing.json")
    alert = payload["alerts"][0]
    alert["labels"].update(alertname=name, severity=severity)
    alert["fingerprint"] = fingerprint
    payload["groupKey"] = f"{{}}:{{alertname={name!r}, fp={fingerprint!r}}}"
    return payload


def test_alert_noise_counts_per_alert_name(client, service, django_assert_num_queries):
    with time_machine.travel(NOW, tick=False) as frozen:
        integration, key = make_integration(service)
        AlertRoute.objects.create(
            integration=integration, position=1, matchers={"alertname": "Flappy"}, flap_delay=timedelta(minutes=5)
        )
        for _ in range(3):
            post_json(client, alertmanager_url(key), _firing("HighErrorRate", "a"))
        post_json(client, alertmanager_url(key), _firing("HighErrorRate", "b"))
        post_json(client, alertmanager_url(key), _firing("DiskInfo", "c", severity="info"))
        post_json(client, alertmanager_url(key), _firing("Flappy", "d"))
        resolved = _firing("Flappy", "d")
        resolved["alerts"][0].update(status="resolved", endsAt="2026-11-27T09:12:00Z")
        post_json(client, alertmanager_url(key), resolved)
        first = Incident.objects.order_by("id").first()
        incident_services.incident_acknowledge(incident=first, actor=None)
        frozen.shift(timedelta(minutes=1))

        with django_assert_num_queries(1):
            report = selectors.alert_noise(since=NOW - timedelta(hours=1))

    by_name = {row.alertname: row for row in report}
    assert report[0].alertname == "HighErrorRate"  # noisiest first
    high = by_name["HighErrorRate"]
    assert (high.alerts, high.received, high.deduplicated, high.without_incident, high.acknowledged) == (2, 4, 2, 0, 1)
    assert (by_name["DiskInfo"].suppressed, by_name["DiskInfo"].without_incident) == (1, 1)
    assert (by_name["Flappy"].flaps, by_name["Flappy"].without_incident) == (1, 1)
    assert selectors.alert_noise(since=NOW + timedelta(hours=1)) == []
