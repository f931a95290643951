"""Each database constraint of the alert models, violated once."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.models import Alert, AlertRoute, Integration, MaintenanceWindow
from tests.incidents.alerting_helpers import make_integration

T = timezone.now()


def _alert(integration, **fields):
    values = {
        "integration": integration,
        "fingerprint": "f1",
        "group_key": "g",
        "starts_at": T,
        "received_at": T,
        "last_received_at": T,
        "service": integration.service,
    }
    values.update(fields)
    return Alert.objects.create(**values)


def _violates(name, create):
    with pytest.raises(IntegrityError, match=name), transaction.atomic():
        create()


def test_alert_one_firing_alert_per_fingerprint(service):
    integration, _ = make_integration(service)
    _alert(integration)
    _alert(integration, status="resolved", resolved_at=T)  # resolved ones may repeat
    _violates("incidents_alert_one_firing_per_fingerprint", lambda: _alert(integration))


def test_alert_constraints(service):
    integration, _ = make_integration(service)
    _violates("incidents_alert_ends_after_start", lambda: _alert(integration, ends_at=T - timedelta(seconds=1)))
    _violates("incidents_alert_repeat_count_positive", lambda: _alert(integration, repeat_count=0))
    _violates("incidents_alert_resolved_has_time", lambda: _alert(integration, status="resolved"))


def test_integration_constraints(service):
    integration, _ = make_integration(service, name="prod")
    _violates(
        "incidents_integration_rate_limit_positive",
        lambda: Integration.objects.filter(pk=integration.pk).update(rate_limit_per_minute=0),
    )
    _violates(
        "incidents_integration_unique_name_per_service",
        lambda: Integration.objects.create(
            service=service, kind="generic", name="prod", key_digest="d" * 64, key_hint="d", key_rotated_at=T
        ),
    )


def test_alert_route_constraints(service):
    integration, _ = make_integration(service)
    AlertRoute.objects.create(integration=integration, position=1)
    _violates(
        "incidents_alertroute_unique_position", lambda: AlertRoute.objects.create(integration=integration, position=1)
    )
    _violates(
        "incidents_alertroute_flap_delay_not_negative",
        lambda: AlertRoute.objects.create(integration=integration, position=2, flap_delay=timedelta(seconds=-1)),
    )
    _violates(
        "incidents_alertroute_severity_valid",
        lambda: AlertRoute.objects.create(integration=integration, position=3, severity="P9"),
    )


def test_maintenance_window_ends_after_start(service):
    _violates(
        "incidents_maintenancewindow_ends_after_start",
        lambda: MaintenanceWindow.objects.create(service=service, starts_at=T, ends_at=T, reason="x"),
    )


def test_integration_key_is_stored_only_as_a_digest(service):
    integration, key = make_integration(service)
    assert len(key) == 32
    assert key not in str(Integration.objects.filter(pk=integration.pk).values().get())
