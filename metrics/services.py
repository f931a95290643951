"""Monthly reports: computed once into a stored snapshot, then sent once to the managers."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from metrics import charts, selectors
from metrics.models import MonthlyReport
from metrics.selectors import Month
from oncall.models import Team, TeamMembership
from oncall.roles import MANAGERS
from oncall.services import notification_enqueue


@dataclass
class RenderedReport:
    subject: str
    text: str
    html: str
    images: dict[str, bytes]


def monthly_report_generate(*, month: Month, team: Team | None = None, force: bool = False) -> MonthlyReport:
    """The stored snapshot for (month, team); computed the first time only, or again when forced."""
    with transaction.atomic():
        # two beats (or a beat and a manager) at once: the second waits here, then finds the stored report
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"monthly-report:{month}:{team.pk if team else 'org'}"]
            )
        existing = MonthlyReport.objects.select_for_update().filter(month=str(month), team=team).order_by().first()
        if existing is not None and not force:
            return existing
        data = selectors.report_data(month=month, team=team)
        if existing is not None:
            existing.data, existing.generated_at = data, timezone.now()
            existing.save(update_fields=["data", "generated_at"])
            return existing
        return MonthlyReport.objects.create(
            month=str(month),
            team=team,
            time_zone=data["time_zone"],
            generated_at=timezone.now(),
            data=data,
        )


def report_recipients(*, team: Team | None) -> list:
    """A team's managers for a team report; everyone in the Managers group for the org report."""
    User = get_user_model()
    if team is not None:
        users = User.objects.filter(
            team_memberships__team=team, team_memberships__role=TeamMembership.Role.MANAGER, is_active=True
        )
    else:
        users = User.objects.filter(groups__name=MANAGERS, is_active=True)
    return list(users.distinct().order_by("username"))


def monthly_report_render(*, report: MonthlyReport) -> RenderedReport:
    data = report.data
    images = {
        "severity-trend": charts.incidents_by_severity(data["trend"]),
        "ttr-trend": charts.ttr_trend(data["trend"]),
    }
    if data["top_services"]["by_count"]:
        images["top-services"] = charts.horizontal_bars(
            "Incidents by service", [(row["service"], row["incidents"]) for row in data["top_services"]["by_count"]]
        )
    scope = report.team.name if report.team else "Organisation"
    context = {
        "report": report,
        "data": data,
        "scope": scope,
        "base_url": settings.FIREBREAK_BASE_URL,
        "images": images,
        "kpis": kpi_rows(data),
    }
    return RenderedReport(
        subject=f"Firebreak monthly review {report.month}: {scope}",
        text=render_to_string("metrics/email/monthly_report.txt", context),
        html=render_to_string("metrics/email/monthly_report.html", context),
        images=images,
    )


def kpi_rows(data: dict) -> list[dict]:
    names = {"ttd": "Time to detect", "tta": "Time to acknowledge", "ttm": "Time to mitigate", "ttr": "Time to resolve"}
    rows = []
    for key, label in names.items():
        stats = data["durations"][key]
        before = data.get("previous_durations", {}).get(key, {}).get("median")
        delta = None if before is None or stats["median"] is None else round(stats["median"] - before, 1)
        # shorter is better for every duration: a negative delta is an improvement
        trend = "" if delta is None or delta == 0 else ("▼" if delta < 0 else "▲")
        rows.append(
            {"key": key.upper(), "label": label, "previous_median": before, "delta": delta, "arrow": trend, **stats}
        )
    return rows


def monthly_report_send(*, report: MonthlyReport, force: bool = False, to: str | None = None) -> list[str]:
    """Queue the report e-mail to every recipient once. A second call sends nothing unless forced.

    Returns the addresses queued now."""
    rendered = monthly_report_render(report=report)
    payload = {
        "html": rendered.html,
        "inline_images": {cid: base64.b64encode(png).decode() for cid, png in rendered.images.items()},
        "kind": "monthly_report",
    }
    scope = report.team.slug if report.team else "org"
    suffix = f":forced:{timezone.now().timestamp():.0f}" if force else ""
    queued: list[str] = []
    with transaction.atomic():
        report = MonthlyReport.objects.select_for_update().order_by().get(pk=report.pk)
        if report.sent_at is not None and not force and to is None:
            return []
        targets = [(None, to)] if to else [(user, None) for user in report_recipients(team=report.team)]
        for user, address in targets:
            who = address or f"user{user.pk}"
            notification, created = notification_enqueue(
                dedupe_key=f"monthly-report:{report.month}:{scope}:{who}{suffix}",
                user=user,
                address=address,
                subject=rendered.subject,
                body=rendered.text,
                payload=payload,
            )
            if created:
                queued.append(notification.address)
        if to is None:
            report.sent_at = timezone.now()
            report.recipients = sorted(set(report.recipients) | set(queued))
            report.save(update_fields=["sent_at", "recipients"])
    return queued


def monthly_reports_send_due(*, now=None) -> int:
    """Send last month's org and team reports once each zone has reached the 1st at 09:00 local time.

    Run hourly by beat: late runs, repeated runs and two beats at once still send each report once."""
    import zoneinfo

    now = now or timezone.now()
    scopes: list[tuple[Team | None, str]] = [(None, settings.FIREBREAK_REPORT_TIME_ZONE)]
    scopes += [(team, team.timezone) for team in Team.objects.all()]
    sent = 0
    for team, tz_name in scopes:
        local = now.astimezone(zoneinfo.ZoneInfo(tz_name))
        if local.day == 1 and local.hour < 9:
            continue
        month = Month(local.year, local.month).previous()
        if MonthlyReport.objects.filter(month=str(month), team=team, sent_at__isnull=False).exists():
            continue
        report = monthly_report_generate(month=month, team=team)
        sent += len(monthly_report_send(report=report))
    return sent
