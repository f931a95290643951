from __future__ import annotations

import base64

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from metrics import charts, selectors
from metrics.models import MonthlyReport
from metrics.selectors import Month
from metrics.services import kpi_rows
from oncall.models import Team


@admin.register(MonthlyReport)
class MonthlyReportAdmin(admin.ModelAdmin):
    list_display = ["month", "team", "time_zone", "generated_at", "sent_at"]
    list_filter = ["team"]
    list_select_related = ["team"]
    ordering = ["-month", "team__name"]
    readonly_fields = ["month", "team", "time_zone", "generated_at", "data", "sent_at", "recipients"]

    def has_add_permission(self, request):
        return False


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def dashboard(request):
    """Managers' metrics dashboard: month picker, team filter, KPIs with deltas, charts and their tables."""
    if not request.user.has_perm("metrics.view_monthlyreport"):
        raise PermissionDenied
    today = timezone.now().date()
    current = Month(today.year, today.month)
    try:
        month = Month.parse(request.GET.get("month", "")) if request.GET.get("month") else current.previous()
    except ValueError:
        month = current.previous()
    teams = list(Team.objects.order_by("name"))
    team = next((t for t in teams if t.slug == request.GET.get("team")), None)
    data = selectors.report_data(month=month, team=team)
    months, cursor = [], current
    for _ in range(13):
        months.append(str(cursor))
        cursor = cursor.previous()
    images = {
        "severity": _data_uri(charts.incidents_by_severity(data["trend"])),
        "ttr": _data_uri(charts.ttr_trend(data["trend"])),
    }
    if data["top_services"]["by_count"]:
        images["services"] = _data_uri(
            charts.horizontal_bars(
                "Incidents by service", [(row["service"], row["incidents"]) for row in data["top_services"]["by_count"]]
            )
        )
    if data["action_item_burndown"]:
        images["burndown"] = _data_uri(charts.burndown(data["action_item_burndown"]))
    if data["noisiest_alerts"]:
        images["noise"] = _data_uri(
            charts.horizontal_bars(
                "Noisiest alerts (received)",
                [(f"{row['alertname']} ({row['service']})", row["received"]) for row in data["noisiest_alerts"]],
                colour="#b45309",
            )
        )
    context = {
        **admin.site.each_context(request),
        "title": f"Metrics — {team.name if team else 'Organisation'} — {month}",
        "data": data,
        "kpis": kpi_rows(data),
        "images": images,
        "months": months,
        "month": str(month),
        "teams": teams,
        "team": team,
    }
    return TemplateResponse(request, "admin/metrics/dashboard.html", context)
