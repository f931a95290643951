import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command

from metrics import services
from metrics.models import MonthlyReport
from metrics.selectors import Month
from oncall import tasks as oncall_tasks
from oncall.models import Notification, TeamMembership
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import TeamFactory, UserFactory


@pytest.fixture
def october(db, manager):
    team = TeamFactory(slug="pay", name="Payments", timezone="Europe/Berlin")
    TeamMembership.objects.create(team=team, user=manager, role="manager")
    service = ServiceFactory(team=team, name="Checkout")
    start = datetime(2026, 10, 5, 10, tzinfo=UTC)
    for index, minutes in enumerate([20, 40, 60, 120, 30]):
        begin = start + timedelta(days=index)
        IncidentFactory(
            service=service,
            severity="P1" if index == 0 else "P2",
            started_at=begin,
            detected_at=begin,
            declared_at=begin,
            acknowledged_at=begin + timedelta(minutes=2),
            mitigated_at=begin + timedelta(minutes=minutes),
            resolved_at=begin + timedelta(minutes=minutes),
            status="resolved",
        )
    return team


def test_monthly_report_generate_is_computed_once(october):
    report = services.monthly_report_generate(month=Month(2026, 10))
    assert report.data["incidents"] == 5
    assert report.data["durations"]["ttr"]["median"] == 40.0
    IncidentFactory(service=october.services.get(), declared_at=datetime(2026, 10, 20, tzinfo=UTC))
    again = services.monthly_report_generate(month=Month(2026, 10))
    assert again.pk == report.pk
    assert again.data["incidents"] == 5  # the stored snapshot, not a recomputation
    assert services.monthly_report_generate(month=Month(2026, 10), force=True).data["incidents"] == 6


def test_monthly_report_send_once_to_managers_with_charts(october, manager, django_capture_on_commit_callbacks):
    UserFactory(username="bystander")  # not a manager: gets nothing
    report = services.monthly_report_generate(month=Month(2026, 10))
    assert services.monthly_report_send(report=report) == [manager.email]
    assert services.monthly_report_send(report=report) == []  # sending twice sends once

    notification = Notification.objects.get(dedupe_key__startswith="monthly-report:")
    oncall_tasks.deliver_notification_task(notification.pk)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Firebreak monthly review 2026-10: Organisation"
    assert message.to == [manager.email]
    html = message.alternatives[0][0]
    assert 'src="cid:severity-trend"' in html
    assert "<b>40.0</b>" in html  # median TTR in the KPI table
    assert "median 40.0, mean 54.0, p90 96.0, n=5, missing=0" in message.body  # same numbers in plain text
    raw = message.message().as_string()
    assert "multipart/related" in raw
    assert "Content-ID: <ttr-trend>" in raw
    report.refresh_from_db()
    assert report.sent_at is not None
    assert report.recipients == [manager.email]


def test_monthly_report_force_sends_again(october, manager):
    report = services.monthly_report_generate(month=Month(2026, 10))
    services.monthly_report_send(report=report)
    assert services.monthly_report_send(report=report, force=True) == [manager.email]
    assert Notification.objects.filter(dedupe_key__startswith="monthly-report:").count() == 2


def test_team_report_goes_to_team_managers(october, manager):
    other_manager = UserFactory(username="elsewhere", groups=["Managers"])
    report = services.monthly_report_generate(month=Month(2026, 10), team=october)
    assert report.time_zone == "Europe/Berlin"
    queued = services.monthly_report_send(report=report)
    assert queued == [manager.email]
    assert other_manager.email not in queued


def test_send_monthly_report_command(october, manager):
    out = io.StringIO()
    call_command("send_monthly_report", "--month", "2026-10", stdout=out)
    assert manager.email in out.getvalue()
    out = io.StringIO()
    call_command("send_monthly_report", "--month", "2026-10", stdout=out)
    assert "already sent" in out.getvalue()
    assert Notification.objects.count() == 1


def test_send_monthly_report_dry_run_stores_and_sends_nothing(october):
    out = io.StringIO()
    call_command("send_monthly_report", "--month", "2026-10", "--dry-run", stdout=out)
    assert "Counted incidents: 5" in out.getvalue()
    assert MonthlyReport.objects.count() == 0
    assert Notification.objects.count() == 0


def test_send_monthly_report_to_one_address(october):
    call_command("send_monthly_report", "--month", "2026-10", "--to", "me@example.com", stdout=io.StringIO())
    assert Notification.objects.get().address == "me@example.com"
    assert MonthlyReport.objects.get().sent_at is None  # still due for the managers


def test_send_monthly_report_bad_arguments(db):
    with pytest.raises(CommandError, match="--month"):
        call_command("send_monthly_report", "--month", "October")
    with pytest.raises(CommandError, match="--team"):
        call_command("send_monthly_report", "--month", "2026-10", "--team", "nope")


def test_reports_go_out_on_the_first_at_nine_local_once(october, manager, settings):
    settings.FIREBREAK_REPORT_TIME_ZONE = "America/New_York"
    # New York falls back on Sunday 1 November 2026 at 02:00, so 09:00 local that day is 14:00 UTC (EST, UTC-5);
    # Berlin (CET, UTC+1 since 25 October) passed 09:00 at 08:00 UTC.
    with time_machine.travel(datetime(2026, 11, 1, 13, 59, tzinfo=UTC), tick=False):
        assert services.monthly_reports_send_due() == 1  # the Payments team report (Berlin) only
    assert list(MonthlyReport.objects.values_list("team__slug", flat=True)) == ["pay"]
    with time_machine.travel(datetime(2026, 11, 1, 14, 1, tzinfo=UTC), tick=False):  # 09:01 in New York
        assert services.monthly_reports_send_due() == 1  # the org report
        assert services.monthly_reports_send_due() == 0  # and never again
    assert MonthlyReport.objects.filter(month="2026-10", sent_at__isnull=False).count() == 2


def test_reports_wait_for_nine_local_in_the_team_zone(october, manager):
    with time_machine.travel(datetime(2026, 11, 1, 7, 59, tzinfo=UTC), tick=False):  # 08:59 in Berlin
        services.monthly_reports_send_due()
    assert not MonthlyReport.objects.filter(team=october).exists()


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_each_report_once(manager, settings):
    """Two beat processes firing the hourly task together: one snapshot per scope, one e-mail per manager."""
    from tests.concurrency import at_once

    team = TeamFactory(slug="pay", timezone="Europe/Berlin")
    TeamMembership.objects.create(team=team, user=manager, role="manager")

    def beat():
        with time_machine.travel(datetime(2026, 11, 2, 12, tzinfo=UTC), tick=False):
            services.monthly_reports_send_due()

    _, errors = at_once(2, beat)
    assert errors == []
    assert MonthlyReport.objects.filter(month="2026-10").count() == 2  # org and team, once each
    keys = list(Notification.objects.values_list("dedupe_key", flat=True))
    assert sorted(keys) == sorted(set(keys))
    assert Notification.objects.filter(user=manager).count() == 2  # the org report and the team report


@pytest.mark.django_db(transaction=True)
def test_three_send_monthly_report_runs_at_once_send_once_and_the_others_say_already_sent(october, manager):
    """Three `send_monthly_report --month` at once (cron on three hosts): one queues the e-mail; the two that
    waited on its lock report "already sent" with its time and succeed."""
    from tests.concurrency import at_once

    def run():
        out = io.StringIO()
        call_command("send_monthly_report", "--month", "2026-10", stdout=out)
        return out.getvalue()

    outputs, errors = at_once(3, run)
    assert errors == []
    sent_at = MonthlyReport.objects.get(team=None).sent_at
    assert sorted(o.startswith("Queued") for o in outputs) == [False, False, True]
    already = [o for o in outputs if not o.startswith("Queued")]
    assert all(f"already sent on {sent_at:%Y-%m-%d %H:%M} UTC" in o for o in already), already
    assert Notification.objects.filter(payload__kind="monthly_report").count() == 1


def test_send_monthly_report_to_one_address_twice_says_already_sent(october):
    call_command("send_monthly_report", "--month", "2026-10", "--to", "me@example.com", stdout=io.StringIO())
    out = io.StringIO()
    call_command("send_monthly_report", "--month", "2026-10", "--to", "me@example.com", stdout=out)
    assert "already sent to me@example.com" in out.getvalue()
    assert Notification.objects.count() == 1


def test_monthly_report_reaches_a_local_smtp_server_once_with_inline_images(october, manager, settings):
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    from tests.e2e.conftest import _free_port

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        for _ in range(2):  # run twice: one e-mail per recipient
            call_command("send_monthly_report", "--month", "2026-10", stdout=io.StringIO())
            for notification in Notification.objects.filter(status="pending"):
                oncall_tasks.deliver_notification_task(notification.pk)
    finally:
        controller.stop()
    assert len(received) == 1
    message = received[0]
    assert message["To"] == manager.email
    assert message.get_content_type() == "multipart/related"
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert {part["Content-ID"] for part in images} >= {"<severity-trend>", "<ttr-trend>"}
    assert all(part.get_content_disposition() == "inline" for part in images)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert 'src="cid:severity-trend"' in html
    assert "median 40.0" in message.get_body(preferencelist=("plain",)).get_content()
