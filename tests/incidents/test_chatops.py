import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.chatops.signing import slack_signature
from incidents.models import Incident, StatusUpdate
from oncall import formatting
from oncall import services as oncall_services
from oncall.models import ContactMethod, Rotation
from tests.incidents.factories import IncidentFactory
from tests.oncall.factories import ContactMethodFactory, RotationFactory, RotationMemberFactory, UserFactory

URL = "/chatops/slack/commands/"
SECRET = "slack-signing-secret-for-tests"


@pytest.fixture(autouse=True)
def _signing_secret(settings):
    settings.SLACK_SIGNING_SECRET = SECRET


@pytest.fixture
def slack_responder(responder):
    ContactMethodFactory(user=responder, kind=ContactMethod.Kind.SLACK, address="U0RESPONDER")
    return responder


def slack_post(client, text, *, user_id="U0RESPONDER", timestamp=None, secret=SECRET, signature=None):
    body = urlencode({"command": "/incident", "text": text, "user_id": user_id, "team_id": "T0", "channel_id": "C0"})
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = signature or slack_signature(secret=secret, timestamp=timestamp, body=body.encode())
    return client.post(
        URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def test_route_is_the_documented_one():
    assert reverse("chatops-slack-commands") == URL


def test_signed_declare_creates_the_incident_and_replies_in_channel(client, slack_responder, service):
    response = slack_post(client, "declare P1 checkout Payments failing at checkout")

    assert response.status_code == 200
    incident = Incident.objects.get()
    assert incident.title == "Payments failing at checkout"
    assert incident.severity == "P1"
    assert incident.service == service
    assert incident.created_by == slack_responder
    body = response.json()
    assert body["response_type"] == "in_channel"
    assert incident.ref in body["text"]
    assert f"#{incident.channel}" in body["text"]  # P1 announces its channel
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "another-secret"},
        {"timestamp": int(time.time()) - 301},
        {"signature": "v0=" + "0" * 64},
    ],
)
def test_bad_signature_or_old_timestamp_is_401_and_changes_nothing(client, slack_responder, service, tamper):
    response = slack_post(client, "declare P1 checkout Down", **tamper)

    assert response.status_code == 401
    assert not Incident.objects.exists()


def test_missing_signature_headers_are_401(client, service):
    response = client.post(URL, data="text=help", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401


def test_unconfigured_signing_secret_is_401(client, settings, slack_responder, service):
    settings.SLACK_SIGNING_SECRET = ""
    assert slack_post(client, "declare P1 checkout Down").status_code == 401


def test_unknown_slack_user_gets_an_explanation_not_an_incident(client, service):
    response = slack_post(client, "declare P1 checkout Down", user_id="U0STRANGER")

    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "does not know your Slack account" in response.json()["text"]
    assert "U0STRANGER" in response.json()["text"]
    assert not Incident.objects.exists()


def test_user_without_permission_is_told_so(client, service):
    outsider = UserFactory(username="outsider")
    ContactMethodFactory(user=outsider, kind=ContactMethod.Kind.SLACK, address="U0OUTSIDER")

    response = slack_post(client, "declare P2 checkout Down", user_id="U0OUTSIDER")

    assert "not allowed to declare incidents" in response.json()["text"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("declare P9 checkout Down", "Severity must be one of P0, P1, P2, P3"),
        ("declare P1 nowhere Down", "No service 'nowhere'"),
        ("declare P1", "Usage: `/incident declare <P0-P3> <service> <title>`"),
        ("ack INC-1999-1", "No incident 'INC-1999-1'"),
        ("frobnicate", "Unknown command 'frobnicate'"),
    ],
)
def test_errors_explain_themselves(client, slack_responder, service, text, expected):
    response = slack_post(client, text)

    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert expected in response.json()["text"]
    assert not Incident.objects.exists()


def test_ack_mitigate_resolve_by_ref(client, slack_responder, service):
    incident = IncidentFactory(service=service, ref="INC-2026-7")

    assert "acknowledged" in slack_post(client, "ack inc-2026-7").json()["text"]
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert incident.commander == slack_responder
    slack_post(client, "mitigate INC-2026-7")
    slack_post(client, "resolve INC-2026-7")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    again = slack_post(client, "ack INC-2026-7").json()["text"]
    assert "resolved" in again  # a refused transition explains the state


def test_update_posts_a_stakeholder_status_update(client, slack_responder, service):
    incident = IncidentFactory(service=service, ref="INC-2026-8")

    response = slack_post(client, "update INC-2026-8 Rolled back, watching error rates")

    update = StatusUpdate.objects.get(incident=incident)
    assert update.message == "Rolled back, watching error rates"
    assert update.author == slack_responder
    assert update.audience == "stakeholders"
    assert response.json()["response_type"] == "in_channel"


def test_oncall_lists_now_and_next(client, slack_responder):
    rotation = RotationFactory(unit=Rotation.Unit.DAILY, handoff_weekday=None, name="Primary")
    first = UserFactory(username="first", first_name="Ada", last_name="Lane")
    second = UserFactory(username="second")
    RotationMemberFactory(rotation=rotation, user=first, position=0)
    RotationMemberFactory(rotation=rotation, user=second, position=1)
    oncall_services.rotation_generate(rotation=rotation)

    text = slack_post(client, f"oncall {rotation.team.slug}").json()["text"]

    assert f"*{rotation.team.name}* Primary (primary layer):" in text
    until = rotation.shifts.get(period__contains=timezone.now()).period.upper
    assert f"until {formatting.when(until, rotation.timezone)} ({rotation.timezone})" in text
    assert "None" not in text
    assert "next" in text
    assert "Ada Lane" in text
    assert "second" in text
    assert "No team 'nope'" in slack_post(client, "oncall nope").json()["text"]


def test_help_lists_every_command(client, db):  # db: each accepted signature is recorded
    text = slack_post(client, "help", user_id="U0ANYONE").json()["text"]
    for command in ("declare", "ack", "mitigate", "resolve", "update", "oncall", "help"):
        assert f"/incident {command}" in text


def test_ssl_check_is_answered_without_a_user(client, db):
    response = slack_post(client, "", user_id="")
    assert response.status_code == 200
    body = "ssl_check=1&token=x"
    timestamp = str(int(time.time()))
    signed = client.post(
        URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=slack_signature(secret=SECRET, timestamp=timestamp, body=body.encode()),
    )
    assert signed.status_code == 200
    assert signed.json() == {}


# --- each signed request is accepted once ------------------------------------------------------------------


def _signed_by_slack_sdk(text: str, *, user_id: str = "U0RESPONDER") -> tuple[str, dict]:
    """A request signed by the official Slack SDK (slack_sdk.signature.SignatureVerifier), as Slack signs it."""
    from slack_sdk.signature import SignatureVerifier

    body = urlencode({"command": "/incident", "text": text, "user_id": user_id, "trigger_id": "13345224609.7"})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    return body, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp, "HTTP_X_SLACK_SIGNATURE": signature}


def test_request_signed_by_the_slack_sdk_is_accepted(client, slack_responder, service):
    body, headers = _signed_by_slack_sdk("declare P2 checkout Slow checkout")
    response = client.post(URL, data=body, content_type="application/x-www-form-urlencoded", **headers)
    assert response.status_code == 200
    assert Incident.objects.get().title == "Slow checkout"


def test_replayed_request_within_the_window_is_401_and_declares_nothing(client, slack_responder, service):
    body, headers = _signed_by_slack_sdk("declare P1 checkout Payments down")
    first = client.post(URL, data=body, content_type="application/x-www-form-urlencoded", **headers)
    replay = client.post(URL, data=body, content_type="application/x-www-form-urlencoded", **headers)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert "already received" in replay.json()["detail"]
    assert Incident.objects.count() == 1


def test_concurrent_replays_are_accepted_exactly_once(transactional_db, slack_responder, service):
    """Copies of one signed request sent at the same moment (threads, each with its own database connection,
    as separate web processes would): one declares, the others are refused."""
    from django.test import Client

    from tests.concurrency import at_once

    body, headers = _signed_by_slack_sdk("declare P1 checkout Payments down")

    def post():
        return Client().post(URL, data=body, content_type="application/x-www-form-urlencoded", **headers).status_code

    codes, errors = at_once(4, post)

    assert errors == []
    assert sorted(codes) == [200, 401, 401, 401]
    assert Incident.objects.count() == 1


def test_accepted_signatures_are_pruned_after_the_window(client, slack_responder, service):
    from django.utils import timezone

    from incidents.models import SlackRequest

    old = timezone.now() - timedelta(minutes=11)
    SlackRequest.objects.create(signature="v0=" + "a" * 64, received_at=old)
    slack_post(client, "help")
    assert not SlackRequest.objects.filter(received_at=old).exists()
    assert SlackRequest.objects.count() == 1  # the request just accepted
