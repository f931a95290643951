"""A real worker, broker and SMTP server: an overdue P0 gets its reminder e-mail, exactly once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from oncall.models import Notification
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_overdue_p0_reminder_reaches_smtp_through_a_real_worker(celery_worker_process, smtp_server):
    commander = UserFactory(username="commander", email="commander@example.com")
    declared = timezone.now() - timedelta(minutes=45)  # P0 cadence is 30 minutes: one period overdue
    incident = IncidentFactory(severity="P0", declared_at=declared, commander=commander)

    for _ in range(3):  # beat firing three times, or three beats: still one reminder
        celery_worker_process.send_task("incidents.tasks.remind_overdue_status_updates")

    messages = smtp_server.wait_for(1)
    assert len(messages) == 1
    recipients, message = messages[0]
    assert recipients == ["commander@example.com"]
    assert message["Subject"] == f"[P0] {incident.ref}: a status update is overdue"
    assert "no status update since" in message.get_body(preferencelist=("plain",)).get_content()
    notification = Notification.objects.get()
    deadline = timezone.now() + timedelta(seconds=10)
    while notification.status != "sent" and timezone.now() < deadline:
        notification.refresh_from_db()
    assert notification.status == "sent"
    assert Incident.objects.get().events.filter(kind="reminder_sent").count() == 1
    smtp_server.wait_for(2, timeout=3)
    assert len(smtp_server.messages) == 1
