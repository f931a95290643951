from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q

from incidents.models import Severity
from postmortems import selectors
from postmortems.models import OPEN_ITEM_STATUSES, ActionItem, ContributingFactor, Postmortem


class PostmortemFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Postmortem.Status.choices)
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username")
    service = django_filters.CharFilter(field_name="incidents__service__slug", distinct=True, help_text="Service slug")
    team = django_filters.CharFilter(field_name="incidents__service__team__slug", distinct=True, help_text="Team slug")
    severity = django_filters.MultipleChoiceFilter(
        field_name="incidents__severity", choices=Severity.choices, distinct=True
    )
    category = django_filters.ChoiceFilter(
        field_name="factors__category", choices=ContributingFactor.Category.choices, distinct=True
    )
    month = django_filters.CharFilter(method="filter_month", help_text="YYYY-MM of first publication (UTC)")
    q = django_filters.CharFilter(method="search", help_text="Words of the title or summary, or an incident ref")

    class Meta:
        model = Postmortem
        fields = ["status", "owner", "service", "team", "severity", "category", "month"]

    def filter_month(self, queryset, name, value):
        try:
            year, month = (int(part) for part in value.split("-"))
            if not (1 <= month <= 12 and 1 <= year <= 9999):  # beyond 9999 Python has no datetime: a 500
                raise ValueError
        except ValueError as exc:
            raise ValidationError({"month": ["Use YYYY-MM, for example 2026-03."]}) from exc
        return queryset.filter(published_at__year=year, published_at__month=month)

    def search(self, queryset, name, value):
        value = value.strip()
        if value.upper().startswith("INC-"):
            return queryset.filter(incidents__ref__iexact=value).distinct()
        return queryset.filter(Q(title__icontains=value) | Q(summary__icontains=value))


class ActionItemFilter(django_filters.FilterSet):
    owner = django_filters.CharFilter(field_name="owner__username", help_text="Owner's username")
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    status = django_filters.MultipleChoiceFilter(choices=ActionItem.Status.choices)
    priority = django_filters.ChoiceFilter(choices=ActionItem.Priority.choices)
    kind = django_filters.ChoiceFilter(choices=ActionItem.Kind.choices)
    overdue = django_filters.BooleanFilter(method="filter_overdue", help_text="Open and past the due date")
    postmortem = django_filters.NumberFilter(field_name="postmortem_id")

    class Meta:
        model = ActionItem
        fields = ["owner", "team", "status", "priority", "kind", "overdue", "postmortem"]

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status__in=OPEN_ITEM_STATUSES, due_on__lt=selectors.org_today())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)
