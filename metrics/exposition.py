"""Prometheus exposition at /metrics: Firebreak's own state, read from the database at scrape time."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from incidents.models import Incident
from oncall.models import Notification, Shift
from postmortems.selectors import action_items_overdue

# Further gauges (overdue action items, on-call gaps) are added by functions registered here;
# each yields GaugeMetricFamily objects.
EXTRA_COLLECTORS: list = []


class FirebreakCollector:
    def collect(self):
        open_incidents = GaugeMetricFamily(
            "firebreak_open_incidents",
            "Open incidents (triggered, acknowledged, mitigated)",
            labels=["severity", "service"],
        )
        rows = (
            Incident.objects.filter(status__in=Incident.OPEN_STATUSES)
            .order_by()
            .values("severity", "service__slug")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            open_incidents.add_metric([row["severity"], row["service__slug"]], row["n"])
        yield open_incidents
        unacknowledged = GaugeMetricFamily(
            "firebreak_unacknowledged_incidents", "Triggered incidents nobody has acknowledged", labels=["severity"]
        )
        for row in (
            Incident.objects.filter(status=Incident.Status.TRIGGERED)
            .order_by()
            .values("severity")
            .annotate(n=Count("pk"))
        ):
            unacknowledged.add_metric([row["severity"]], row["n"])
        yield unacknowledged
        notifications = GaugeMetricFamily(
            "firebreak_notifications", "Notifications in the outbox by status and channel", labels=["status", "channel"]
        )
        for row in Notification.objects.order_by().values("status", "channel").annotate(n=Count("pk")):
            notifications.add_metric([row["status"], row["channel"]], row["n"])
        yield notifications
        overdue = GaugeMetricFamily(
            "firebreak_overdue_action_items", "Open or in-progress action items past their due date", labels=["team"]
        )
        rows = action_items_overdue().order_by().values("team__slug").annotate(n=Count("pk"))
        for row in rows:
            overdue.add_metric([row["team__slug"] or ""], row["n"])
        yield overdue
        gaps = GaugeMetricFamily(
            "firebreak_oncall_gaps_next_7_days",
            "Gap shifts (nobody on call) starting in the next 7 days",
            labels=["team"],
        )
        now = timezone.now()
        rows = (
            Shift.objects.filter(source=Shift.Source.GAP, period__overlap=DateTimeTZRange(now, now + timedelta(days=7)))
            .order_by()
            .values("team__slug")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            gaps.add_metric([row["team__slug"]], row["n"])
        yield gaps
        for extra in EXTRA_COLLECTORS:
            yield from extra()


def _authorized(request) -> bool:
    token = settings.FIREBREAK_METRICS_TOKEN
    if not token:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
def prometheus_metrics(request):
    if not settings.FIREBREAK_METRICS_TOKEN:
        return HttpResponse("Set FIREBREAK_METRICS_TOKEN to enable /metrics.\n", status=404, content_type="text/plain")
    if not _authorized(request):
        response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="firebreak"'
        return response
    registry = CollectorRegistry()
    registry.register(FirebreakCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
