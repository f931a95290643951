"""Each database constraint of the incidents app, violated once."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.models import Incident, IncidentRoleAssignment, SeverityPolicy
from tests.incidents.factories import IncidentFactory

T = timezone.now()


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("started_at", "detected_at"),
        ("detected_at", "acknowledged_at"),
        ("started_at", "mitigated_at"),
        ("mitigated_at", "resolved_at"),
        ("started_at", "resolved_at"),
        ("resolved_at", "closed_at"),
    ],
)
def test_incident_time_order_constraints(db, earlier, later):
    incident = IncidentFactory(
        started_at=T - timedelta(hours=5),
        detected_at=T - timedelta(hours=4),
        acknowledged_at=T - timedelta(hours=3),
        mitigated_at=T - timedelta(hours=2),
        resolved_at=T - timedelta(hours=1),
        closed_at=T,
        declared_at=T - timedelta(hours=4),
    )
    setattr(incident, later, getattr(incident, earlier) - timedelta(seconds=1))
    if later == "detected_at":
        incident.acknowledged_at = None
    if later == "mitigated_at":
        incident.resolved_at = incident.closed_at = None
    if later == "resolved_at":
        incident.closed_at = None
        if earlier == "started_at":
            incident.mitigated_at = None
    name = f"incidents_incident_{earlier.removesuffix('_at')}_before_{later.removesuffix('_at')}"
    with pytest.raises(IntegrityError, match=name), transaction.atomic():
        incident.save()


def test_incident_duplicate_needs_original(db):
    incident = IncidentFactory()
    incident.status, incident.closure_reason, incident.closed_at = "cancelled", "duplicate", T
    with pytest.raises(IntegrityError, match="duplicate_needs_original"), transaction.atomic():
        incident.save()


def test_incident_cancelled_needs_reason(db):
    incident = IncidentFactory()
    incident.status = Incident.Status.CANCELLED
    with pytest.raises(IntegrityError, match="cancelled_needs_reason"), transaction.atomic():
        incident.save()


def test_incident_not_duplicate_of_itself(db):
    incident = IncidentFactory()
    incident.duplicate_of = incident
    with pytest.raises(IntegrityError, match="not_duplicate_of_itself"), transaction.atomic():
        incident.save()


def test_role_assignment_one_current_holder(db, manager, responder):
    incident = IncidentFactory()
    IncidentRoleAssignment.objects.create(incident=incident, user=manager, role="commander", assigned_at=T)
    with pytest.raises(IntegrityError, match="one_holder"), transaction.atomic():
        IncidentRoleAssignment.objects.create(incident=incident, user=responder, role="commander", assigned_at=T)


def test_severity_policy_cadence_positive(db):
    policy = SeverityPolicy.objects.get(severity="P0")
    policy.update_cadence = timedelta(0)
    with pytest.raises(IntegrityError, match="cadence_positive"), transaction.atomic():
        policy.save()


def test_severity_policies_created_by_migration(db):
    policies = {p.severity: p for p in SeverityPolicy.objects.all()}
    assert set(policies) == {"P0", "P1", "P2", "P3"}
    assert policies["P0"].update_cadence == timedelta(minutes=30)
    assert policies["P1"].update_cadence == timedelta(minutes=60)
    assert policies["P2"].update_cadence == timedelta(hours=4)
    assert policies["P3"].update_cadence is None
    assert [p.postmortem_required for p in policies.values()] == [True, True, True, False]
    assert [p.channel_required for p in policies.values()] == [True, True, False, False]
    assert all(p.postmortem_deadline == timedelta(days=7) for p in policies.values())
