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
