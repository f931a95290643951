import django_filters

from incidents.models import Incident, Severity


class IncidentFilter(django_filters.FilterSet):
    # distinct=False: plain columns, no multi-valued join, so no duplicates; django-filter's default DISTINCT
    # made PostgreSQL sort every matching row for one page (410 ms at 1M incidents: bench/RESULTS.md)
    status = django_filters.MultipleChoiceFilter(choices=Incident.Status.choices, distinct=False)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, distinct=False)
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug")
    team = django_filters.CharFilter(field_name="service__team__slug", help_text="Team slug")
    declared_after = django_filters.IsoDateTimeFilter(field_name="declared_at", lookup_expr="gte")
    declared_before = django_filters.IsoDateTimeFilter(field_name="declared_at", lookup_expr="lt")
    is_practice = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="search", help_text="Reference or words of the title")

    class Meta:
        model = Incident
        fields = ["status", "severity", "service", "team", "declared_after", "declared_before", "is_practice"]

    def search(self, queryset, name, value):
        value = value.strip()
        if value.upper().startswith("INC-"):
            # refs are stored upper-case: an exact match on either spelling uses the unique index, where
            # `ref__iexact` (UPPER(ref) = UPPER(…)) reads every row (bench/RESULTS.md, API list)
            return queryset.filter(ref__in={value, value.upper()})
        return queryset.filter(title__icontains=value)
