from datetime import timedelta

import factory
from django.utils import timezone

from incidents.models import Incident, Service, StatusUpdate
from tests.oncall.factories import TeamFactory


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")
    team = factory.SubFactory(TeamFactory)


class IncidentFactory(factory.django.DjangoModelFactory):
    """A row as it would be after declaration; use services for transitions under test."""

    class Meta:
        model = Incident

    ref = factory.Sequence(lambda n: f"INC-2000-{n + 1}")
    title = factory.Sequence(lambda n: f"Something broke {n}")
    severity = "P2"
    status = Incident.Status.TRIGGERED
    service = factory.SubFactory(ServiceFactory)
    declared_at = factory.LazyFunction(timezone.now)
    detected_at = factory.LazyAttribute(lambda o: o.declared_at - timedelta(minutes=2))
    started_at = factory.LazyAttribute(lambda o: o.detected_at - timedelta(minutes=5))


class StatusUpdateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StatusUpdate

    incident = factory.SubFactory(IncidentFactory)
    at = factory.LazyFunction(timezone.now)
    message = "Still investigating."
