from __future__ import annotations

import django_filters

from oncall.models import Override, Shift, Unavailability


class ShiftFilter(django_filters.FilterSet):
    start = django_filters.IsoDateTimeFilter(method="filter_noop", help_text="Range start (ISO 8601); default now")
    end = django_filters.IsoDateTimeFilter(method="filter_noop", help_text="Range end; default start + 14 days")

    class Meta:
        model = Shift
        fields = ["rotation", "user", "source", "layer", "team"]

    def filter_noop(self, queryset, name, value):
        return queryset  # the range is applied by the view (it needs both ends)


class OverrideFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(field_name="cancelled_at", lookup_expr="isnull")

    class Meta:
        model = Override
        fields = ["rotation", "user"]


class UnavailabilityFilter(django_filters.FilterSet):
    class Meta:
        model = Unavailability
        fields = ["user", "kind"]
