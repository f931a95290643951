from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from oncall import services, tasks
from oncall.models import Notification
from tests.oncall.factories import ContactMethodFactory, UserFactory


def test_notification_enqueue_is_once_per_key(db, django_capture_on_commit_callbacks):
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = services.notification_enqueue(dedupe_key="k1", user=user, subject="s", body="b")
        again, created_again = services.notification_enqueue(dedupe_key="k1", user=user, subject="s2", body="b2")
    assert created
    assert not created_again
    assert first.pk == again.pk
    assert len(callbacks) == 1
    assert Notification.objects.count() == 1


def test_notification_uses_the_first_email_contact_method(db):
    user = UserFactory(email="plain@example.com")
    ContactMethodFactory(user=user, address="second@example.com", position=2)
    ContactMethodFactory(user=user, address="first@example.com", position=1)
    notification, _ = services.notification_enqueue(dedupe_key="k", user=user, subject="s", body="b")
    assert notification.address == "first@example.com"


def test_notification_deliver_sends_once(db):
    user = UserFactory()
    notification, _ = services.notification_enqueue(dedupe_key="k", user=user, subject="Paged", body="Wake up")
    tasks.deliver_notification_task(notification.pk)
    tasks.deliver_notification_task(notification.pk)  # duplicate delivery of the task

    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Paged"
    assert mail.outbox[0].to == [user.email]
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.attempts == 1


def test_notification_deliver_retries_with_backoff_then_fails_visibly(db, settings, monkeypatch):
    settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS = 3
    settings.FIREBREAK_NOTIFICATION_RETRY_SECONDS = 10

    def broken(notification):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setitem(services.channels.SENDERS, "email", broken)
    notification, _ = services.notification_enqueue(dedupe_key="k", user=UserFactory(), subject="s", body="b")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert notification.next_attempt_at == start + timedelta(seconds=10)
    assert "smtp down" in notification.error

    with time_machine.travel(start + timedelta(seconds=5), tick=False):  # not due yet
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.attempts == 1

    with time_machine.travel(start + timedelta(seconds=11), tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.next_attempt_at == start + timedelta(seconds=11 + 20)

    with time_machine.travel(start + timedelta(seconds=40), tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 3)
    assert notification.next_attempt_at is None


def test_notification_without_address_fails_at_once(db):
    user = UserFactory(email="")
    notification, _ = services.notification_enqueue(dedupe_key="k", user=user, subject="s", body="b")
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "no e-mail address" in notification.error
    assert mail.outbox == []


def test_notification_retry_requeues_a_failed_one(db, django_capture_on_commit_callbacks):
    notification, _ = services.notification_enqueue(dedupe_key="k", user=UserFactory(email=""), subject="s", body="b")
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == "failed"
    notification.user.email = "fixed@example.com"
    notification.user.save()
    with django_capture_on_commit_callbacks() as callbacks:
        services.notification_retry(notification=notification)
    assert len(callbacks) == 1
    tasks.deliver_notification_task(notification.pk)
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert mail.outbox[0].to == ["fixed@example.com"]


@pytest.mark.django_db
def test_deliver_due_notifications_requeues_lost_tasks(django_capture_on_commit_callbacks):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        lost, _ = services.notification_enqueue(dedupe_key="lost", user=UserFactory(), subject="s", body="b")
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert tasks.deliver_due_notifications() == 0  # its own task may still be on the way
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        assert tasks.deliver_due_notifications() == 1


# --- delivery: only transport errors are retried; a claimed row is taken again after its lease -------------


@pytest.fixture
def flaky_smtp(settings):
    """A real local SMTP server (aiosmtpd) that answers the first message with 451 (try again later) and
    accepts the next ones."""
    import socket

    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.refused = 0
            self.accepted = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            if not self.refused:
                self.refused += 1
                return "451 Requested action aborted: try again later"
            self.accepted.append(envelope.rcpt_tos)
            return "250 Message accepted for delivery"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield handler
    controller.stop()


def test_notification_deliver_retries_an_smtp_error_from_a_real_server(db, flaky_smtp, settings):
    settings.FIREBREAK_NOTIFICATION_RETRY_SECONDS = 10
    user = UserFactory(email="oncall@example.com")
    notification, _ = services.notification_enqueue(dedupe_key="k", user=user, subject="Paged", body="b")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "SMTPDataError" in notification.error
    assert notification.next_attempt_at == start + timedelta(seconds=10)

    with time_machine.travel(start + timedelta(seconds=11), tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert flaky_smtp.accepted == [["oncall@example.com"]]


def test_notification_deliver_retries_a_refused_smtp_connection(db, settings):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    notification, _ = services.notification_enqueue(dedupe_key="k", user=UserFactory(), subject="s", body="b")
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in notification.error


def test_notification_deliver_fails_a_programming_error_at_once_on_the_timeline(db):
    """Building the message raises (inline images given as a list): not a transport error, so it is not
    retried: the notification fails at once, with the error, and the incident's timeline says so."""
    from incidents.models import IncidentEvent
    from tests.incidents.factories import IncidentFactory

    incident = IncidentFactory()
    notification, _ = services.notification_enqueue(
        dedupe_key="k",
        user=UserFactory(),
        subject="s",
        body="b",
        payload={"kind": "page", "incident": incident.ref, "html": "<p>b</p>", "inline_images": ["not-a-mapping"]},
    )
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.next_attempt_at is None
    assert "AttributeError" in notification.error
    assert mail.outbox == []
    event = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.NOTIFICATION_FAILED)
    assert "AttributeError" in event.message


def test_notification_claimed_by_a_dead_worker_is_sent_after_its_lease(db, settings, monkeypatch):
    """A worker that dies mid-send leaves its claim: nobody sends the message while the lease runs (no second
    concurrent send); afterwards the sweep queues it and the next worker sends it."""
    settings.FIREBREAK_NOTIFICATION_LEASE_SECONDS = 300
    email_sender = services.channels.SENDERS["email"]

    def worker_dies(notification):
        raise SystemExit("worker killed")  # not an Exception: nothing is recorded, like a SIGKILL

    monkeypatch.setitem(services.channels.SENDERS, "email", worker_dies)
    notification, _ = services.notification_enqueue(dedupe_key="k", user=UserFactory(), subject="s", body="b")
    start = timezone.now()
    with time_machine.travel(start, tick=False), pytest.raises(SystemExit):
        services.notification_deliver(notification_id=notification.pk)
    monkeypatch.setitem(services.channels.SENDERS, "email", email_sender)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)

    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        services.notification_deliver(notification_id=notification.pk)  # a redelivered task, lease running
        assert tasks.deliver_due_notifications() == 0
    assert mail.outbox == []

    with time_machine.travel(start + timedelta(seconds=300 + 61), tick=False):
        assert tasks.deliver_due_notifications() == 1
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert len(mail.outbox) == 1


def test_notification_whose_last_attempt_never_finished_fails_visibly(db, settings, monkeypatch):
    settings.FIREBREAK_NOTIFICATION_MAX_ATTEMPTS = 1

    def worker_dies(notification):
        raise SystemExit("worker killed")

    monkeypatch.setitem(services.channels.SENDERS, "email", worker_dies)
    notification, _ = services.notification_enqueue(dedupe_key="k", user=UserFactory(), subject="s", body="b")
    start = timezone.now()
    with time_machine.travel(start, tick=False), pytest.raises(SystemExit):
        services.notification_deliver(notification_id=notification.pk)
    monkeypatch.undo()
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "never finished" in notification.error
    assert mail.outbox == []
