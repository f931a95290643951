"""Automation reads: which rules match an incident."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from incidents.models import Alert, AutomationRule, AutomationRun, Incident


def incident_alert_names(*, incident: Incident) -> set[str]:
    labels = Alert.objects.filter(incident=incident).values_list("labels", flat=True)
    return {item["alertname"] for item in labels if isinstance(item, dict) and item.get("alertname")}


def rules_matching(*, incident: Incident, auto: bool | None = None) -> list[AutomationRule]:
    """Active rules of active actions whose service, severity and alert name (empty: any) fit the incident."""
    queryset = (
        AutomationRule.objects.filter(is_active=True, action__is_active=True)
        .filter(Q(service__isnull=True) | Q(service_id=incident.service_id))
        .filter(Q(severity="") | Q(severity=incident.severity))
        .select_related("action", "service")
        .order_by("action__name", "id")
    )
    if auto is not None:
        queryset = queryset.filter(auto=auto)
    rules = list(queryset)
    if any(rule.alert_name for rule in rules):
        names = incident_alert_names(incident=incident)
        rules = [rule for rule in rules if not rule.alert_name or rule.alert_name in names]
    return rules


def offered_actions(*, incident: Incident) -> list[AutomationRule]:
    """Rules to show as buttons on an open incident: one per action."""
    seen, out = set(), []
    for rule in rules_matching(incident=incident):
        if rule.action_id not in seen:
            seen.add(rule.action_id)
            out.append(rule)
    return out


def incident_runs(*, incident_id: int) -> QuerySet[AutomationRun]:
    return (
        AutomationRun.objects.filter(incident_id=incident_id)
        .select_related("action", "rule", "requested_by")
        .order_by("-created_at", "-id")
    )
