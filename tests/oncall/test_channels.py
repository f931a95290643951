"""Delivery channels against real local peers."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse

from oncall import services
from oncall.models import ContactMethod, Notification
from tests.oncall.factories import ContactMethodFactory, UserFactory


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 recording what it gets; answers with `receiver.status`."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            length = int(self.headers["Content-Length"])
            received.append((dict(self.headers), self.rfile.read(length)))
            self.send_response(server.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.status = 204
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_webhook_is_signed_json(db, receiver, settings):
    settings.FIREBREAK_WEBHOOK_SECRET = "s3cret"
    notification, _ = services.notification_enqueue(
        dedupe_key="page:1",
        user=UserFactory(),
        channel="webhook",
        address=receiver.url,
        subject="[P1] INC-1 down",
        body="text",
        payload={"kind": "page", "incident": "INC-1"},
    )
    services.notification_deliver(notification_id=notification.pk)

    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Firebreak-Signature"] == expected
    assert json.loads(body) == {
        "id": "page:1",
        "subject": "[P1] INC-1 down",
        "text": "text",
        "data": {"kind": "page", "incident": "INC-1"},
    }
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_webhook_error_status_is_retried(db, receiver, settings):
    settings.FIREBREAK_WEBHOOK_SECRET = "s3cret"
    receiver.status = 500
    notification, _ = services.notification_enqueue(
        dedupe_key="k", user=UserFactory(), channel="webhook", address=receiver.url, subject="s", body="b"
    )
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "500" in notification.error


def test_webhook_without_a_secret_fails_visibly(db, receiver, settings):
    settings.FIREBREAK_WEBHOOK_SECRET = ""
    notification, _ = services.notification_enqueue(
        dedupe_key="k", user=UserFactory(), channel="webhook", address=receiver.url, subject="s", body="b"
    )
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "FIREBREAK_WEBHOOK_SECRET" in notification.error
    assert receiver.received == []


def test_send_test_action_on_contact_methods(client, manager, django_capture_on_commit_callbacks):
    method = ContactMethodFactory(user=manager, kind=ContactMethod.Kind.EMAIL, address="me@example.com")
    client.force_login(manager)
    response = client.post(
        reverse("admin:oncall_contactmethod_changelist"), {"action": "send_test", "_selected_action": [method.pk]}
    )
    assert response.status_code == 302
    notification = Notification.objects.get(payload__kind="test")
    assert (notification.address, notification.channel) == ("me@example.com", "email")
