"""Delivery channels against real local peers."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from oncall import services
from oncall.models import ContactMethod, Notification
from tests.oncall.factories import ContactMethodFactory, UserFactory


def _serve(host: str = "127.0.0.1", on_post=None):
    """A webhook receiver on `host` recording what it gets; answers with `server.status` (and
    `server.location` as Location), after calling `on_post(server)` if given."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            length = int(self.headers["Content-Length"])
            received.append((dict(self.headers), self.rfile.read(length)))
            if on_post is not None:
                on_post(server)
            self.send_response(server.status)
            if server.location:
                self.send_header("Location", server.location)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer((host, 0), Handler)
    server.status = 204
    server.location = ""
    server.received = received
    server.url = f"http://{host}:{server.server_port}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver():
    server = _serve()
    yield server
    server.shutdown()


@pytest.fixture
def webhooks_to_loopback(settings):
    """Webhook contact methods may reach 127.0.0.1 (the local test peers), as an operator would allow an
    internal host: its name on the allow-list and its network allowed."""
    settings.FIREBREAK_WEBHOOK_SECRET = "s3cret"
    settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "127.0.0.2"]
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def test_webhook_is_signed_json(db, receiver, webhooks_to_loopback):
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


def test_webhook_error_status_is_retried(db, receiver, webhooks_to_loopback):
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


# --- webhook egress (SSRF): the rules of automated actions and Slack webhooks ------------------------------


def _webhook(address: str) -> Notification:
    notification, _ = services.notification_enqueue(
        dedupe_key=f"k:{address}", user=UserFactory(), channel="webhook", address=address, subject="s", body="b"
    )
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


def test_webhook_to_loopback_is_refused_without_the_network_setting(db, receiver, webhooks_to_loopback, settings):
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = []
    notification = _webhook(receiver.url)
    assert receiver.received == []
    assert notification.status == "failed"
    assert "loopback address 127.0.0.1, which is not allowed" in notification.error


def test_webhook_to_a_host_off_the_allow_list_is_refused(db, receiver, webhooks_to_loopback, settings):
    settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS = []
    notification = _webhook(receiver.url)
    assert receiver.received == []
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "not on the allow-list" in notification.error


def test_webhook_redirect_is_not_followed(db, webhooks_to_loopback, settings):
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    target = _serve("127.0.0.2")
    redirector = _serve()
    redirector.status = 302
    redirector.location = target.url
    try:
        notification = _webhook(redirector.url)
    finally:
        redirector.shutdown()
        target.shutdown()
    assert len(redirector.received) == 1
    assert target.received == []
    assert notification.status == "failed"
    assert "302 (redirects are not followed)" in notification.error


def test_send_test_to_a_saved_loopback_webhook_posts_nothing(client, responder, receiver, settings):
    """A row saved before the rule (or by hand) is still refused when sent."""
    settings.FIREBREAK_WEBHOOK_SECRET = "s3cret"
    method = ContactMethodFactory(user=responder, kind=ContactMethod.Kind.WEBHOOK, address=receiver.url)
    client.force_login(responder)
    client.post(
        reverse("admin:oncall_contactmethod_changelist"), {"action": "send_test", "_selected_action": [method.pk]}
    )
    notification = Notification.objects.get(payload__kind="test")
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert receiver.received == []
    assert notification.status == "failed"


@pytest.mark.parametrize(
    "address",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://127.0.0.2/hook",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_contact_method_admin_refuses_internal_webhook_addresses(client, responder, settings, address):
    settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "::1", "127.0.0.2", "169.254.169.254"]
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = []
    client.force_login(responder)
    response = client.post(
        reverse("admin:oncall_contactmethod_add"),
        {"user": responder.pk, "kind": "webhook", "address": address, "position": 0},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["address"]
    assert "is not allowed" in errors["address"][0]
    assert not ContactMethod.objects.exists()


def test_contact_method_admin_refuses_a_webhook_host_off_the_allow_list(client, responder, settings):
    settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS = []
    client.force_login(responder)
    response = client.post(
        reverse("admin:oncall_contactmethod_add"),
        {"user": responder.pk, "kind": "webhook", "address": "https://hooks.example.com/x", "position": 0},
    )
    assert "not on the allow-list" in response.context["adminform"].form.errors["address"][0]
    assert not ContactMethod.objects.exists()


def test_contact_method_admin_saves_an_allowed_webhook(client, responder, receiver, webhooks_to_loopback):
    client.force_login(responder)
    response = client.post(
        reverse("admin:oncall_contactmethod_add"),
        {"user": responder.pk, "kind": "webhook", "address": receiver.url, "position": 0},
    )
    assert response.status_code == 302
    assert ContactMethod.objects.get().address == receiver.url


def test_contact_method_save_refuses_a_metadata_address(db, settings):
    settings.FIREBREAK_WEBHOOK_ALLOWED_HOSTS = ["169.254.169.254"]
    method = ContactMethod(user=UserFactory(), kind="webhook", address="http://169.254.169.254/")
    with pytest.raises(ValidationError) as caught:
        services.contact_method_save(method=method)
    assert "link-local address 169.254.169.254" in caught.value.message_dict["address"][0]
    assert method.pk is None


# --- delivery holds no row lock while it talks to the peer ---------------------------------------------------


def test_webhook_is_sent_with_the_row_unlocked(transactional_db, webhooks_to_loopback):
    """While the (slow) peer holds the request, another connection can lock the notification's row at once:
    the claim was committed before sending, and the outcome is recorded afterwards."""
    seen = {}

    def lock_the_row(server):
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT status, attempts FROM oncall_notification WHERE id = %s FOR UPDATE NOWAIT",
                    [seen["id"]],
                )
                seen["row"] = cursor.fetchone()
        except Exception as exc:  # noqa: BLE001 - the lock is held: recorded for the assertion
            seen["error"] = exc
        finally:
            connection.close()

    peer = _serve(on_post=lock_the_row)
    try:
        notification, _ = services.notification_enqueue(
            dedupe_key="slow", user=UserFactory(), channel="webhook", address=peer.url, subject="s", body="b"
        )
        seen["id"] = notification.pk
        services.notification_deliver(notification_id=notification.pk)
    finally:
        peer.shutdown()
    assert "error" not in seen, seen.get("error")
    assert seen["row"] == ("pending", 1)  # claimed (one attempt) and committed, not yet recorded
    notification.refresh_from_db()
    assert notification.status == "sent"
