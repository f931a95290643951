from datetime import timedelta

import factory
from django.utils import timezone

from postmortems.models import ActionItem, ContributingFactor, Postmortem
from tests.oncall.factories import UserFactory


class PostmortemFactory(factory.django.DjangoModelFactory):
    """A row as a draft would be; use services for transitions under test."""

    class Meta:
        model = Postmortem
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Postmortem {n}")
    owner = factory.SubFactory(UserFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))

    @factory.post_generation
    def incidents(self, create, extracted, **kwargs):
        if create and extracted:
            self.incidents.set(extracted)


def complete_sections():
    """Every required section filled, in blameless words."""
    return {
        "summary": "Checkout returned errors for 40 minutes.",
        "impact": "About 3% of payments failed.",
        "timeline": "- 10:00 deploy\n- 10:40 rollback",
        "detection": "An error-rate alert fired after 5 minutes.",
        "trigger": "A configuration change lowered a connection limit.",
        "resolution": "The change was rolled back.",
        "lessons": "Configuration changes need the same canary as code.",
    }


class ContributingFactorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContributingFactor

    postmortem = factory.SubFactory(PostmortemFactory)
    category = ContributingFactor.Category.CONFIGURATION
    description = "The connection limit was not validated before rollout."


class ActionItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionItem

    postmortem = factory.SubFactory(PostmortemFactory)
    title = factory.Sequence(lambda n: f"Automate the rollback {n}")
    owner = factory.SubFactory(UserFactory)
    priority = ActionItem.Priority.PRIORITY
    kind = ActionItem.Kind.PREVENT
    due_on = factory.LazyFunction(lambda: timezone.now().date() + timedelta(days=28))
