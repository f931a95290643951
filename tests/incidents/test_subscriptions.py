import json

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.urls import reverse

from incidents import services
from incidents.models import Subscription, TeamChatSettings
from incidents.stakeholders import subscription_create
from oncall.models import Notification
from oncall.services import notification_deliver
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import UserFactory


def test_stakeholder_update_is_emailed_once_to_each_subscriber(service, responder):
    incident = IncidentFactory(service=service)
    follower = UserFactory(username="follower")
    subscription_create(actor=None, service=service, user=follower)
    subscription_create(actor=None, incident=incident, user=follower)  # subscribed twice: one mail
    subscription_create(actor=None, incident=incident, email="VP@Example.com")
    subscription_create(actor=None, service=ServiceFactory(), email="other@example.com")  # another service

    update = services.status_update_create(incident=incident, author=responder, message="Fix deployed")

    notifications = Notification.objects.filter(dedupe_key__startswith=f"incidents:stakeholder-update:{update.pk}:")
    assert sorted(notifications.values_list("address", flat=True)) == ["follower@example.com", "vp@example.com"]
    for notification in notifications:
        notification_deliver(notification_id=notification.pk)
    assert sorted(m.to[0] for m in mail.outbox) == ["follower@example.com", "vp@example.com"]
    assert all("Fix deployed" in m.body and incident.ref in m.subject for m in mail.outbox)


def test_responder_audience_updates_are_not_emailed_to_subscribers(service, responder):
    incident = IncidentFactory(service=service)
    subscription_create(actor=None, service=service, email="exec@example.com")

    services.status_update_create(incident=incident, author=responder, message="Digging in logs", audience="responders")

    assert not Notification.objects.filter(dedupe_key__startswith="incidents:stakeholder-update:").exists()


def test_practice_updates_say_so(service, responder):
    incident = IncidentFactory(service=service, is_practice=True)
    subscription_create(actor=None, incident=incident, email="exec@example.com")

    services.status_update_create(incident=incident, author=responder, message="Drill going well")

    assert Notification.objects.get(address="exec@example.com").subject.startswith("[PRACTICE] ")


def test_subscription_create_validates_target_and_recipient(service):
    with pytest.raises(ValidationError) as error:
        subscription_create(actor=None, email="a@example.com")
    assert "service" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        subscription_create(actor=None, service=service, email="not an address")
    assert "email" in error.value.message_dict
    assert subscription_create(actor=None, service=service, email="a@example.com") == subscription_create(
        actor=None, service=service, email="a@example.com"
    )


def test_subscription_constraints_hold_in_the_database(service):
    incident = IncidentFactory(service=service)
    with pytest.raises(IntegrityError):
        Subscription.objects.create(service=service, incident=incident, email="a@example.com")


def test_subscription_needs_one_recipient_in_the_database(service):
    with pytest.raises(IntegrityError):
        Subscription.objects.create(service=service, email="")


def test_incident_events_post_to_the_team_channel_through_the_outbox(service, responder, local_server, settings):
    settings.FIREBREAK_SLACK_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    TeamChatSettings.objects.create(team=service.team, slack_webhook_url=local_server.url("/services/T0/B0/x"))

    incident = services.incident_declare(title="Checkout down", severity="P0", service=service, actor=responder)
    services.incident_acknowledge(incident=incident, actor=responder)
    services.status_update_create(incident=incident, author=responder, message="Rolling back")
    services.incident_mitigate(incident=incident, actor=responder)  # not posted
    services.incident_resolve(incident=incident, actor=responder)

    posts = Notification.objects.filter(channel="slack").order_by("id")
    assert [p.payload["event"] for p in posts] == ["declared", "acknowledged", "status_update", "resolved"]
    for post in posts:
        assert notification_deliver(notification_id=post.pk).status == "sent"
    texts = [json.loads(r.body)["text"] for r in local_server.requests]
    assert f"Join the incident channel #{incident.channel}" in texts[0]
    assert "Rolling back" in texts[2]
    assert all(r.path == "/services/T0/B0/x" for r in local_server.requests)


def test_slack_post_to_a_host_off_the_list_fails_visibly(service, responder, local_server, settings):
    settings.FIREBREAK_SLACK_WEBHOOK_HOSTS = ["hooks.slack.com"]
    TeamChatSettings.objects.create(team=service.team, slack_webhook_url=local_server.url())
    services.incident_declare(title="Down", severity="P3", service=service, actor=responder)

    post = Notification.objects.get(channel="slack")
    post = notification_deliver(notification_id=post.pk)

    assert post.status == "failed"
    assert "not on the allow-list" in post.error
    assert local_server.requests == []


def test_handoff_news_to_a_team_channel_uses_the_teams_webhook(service, local_server, settings):
    settings.FIREBREAK_SLACK_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    service.team.chat_channel = "C0TEAM"
    service.team.save()
    TeamChatSettings.objects.create(team=service.team, slack_webhook_url=local_server.url("/team"))
    notification = Notification.objects.create(
        dedupe_key="test:handoff", channel="slack", address="C0TEAM", subject="Handoff", body="Now on call: someone"
    )

    assert notification_deliver(notification_id=notification.pk).status == "sent"
    assert json.loads(local_server.requests[0].body) == {"text": "Now on call: someone"}


def test_api_subscribes_the_signed_in_user_and_unsubscribes(responder_api, responder, service):
    incident = IncidentFactory(service=service)

    by_service = responder_api.post("/api/v1/subscriptions/", {"service": "checkout"}, format="json")
    by_incident = responder_api.post("/api/v1/subscriptions/", {"incident": incident.ref}, format="json")
    both = responder_api.post(
        "/api/v1/subscriptions/", {"service": "checkout", "incident": incident.ref}, format="json"
    )

    assert by_service.status_code == 201
    assert by_incident.json()["incident"] == incident.ref
    assert both.status_code == 400
    assert "service" in both.json()["errors"]
    assert {s.user for s in Subscription.objects.all()} == {responder}
    assert len(responder_api.get("/api/v1/subscriptions/").json()) == 2
    assert responder_api.delete(f"/api/v1/subscriptions/{by_service.json()['id']}/").status_code == 204
    assert Subscription.objects.count() == 1


def test_api_cannot_delete_someone_elses_subscription(responder_api, service):
    other = subscription_create(actor=None, service=service, user=UserFactory(username="someone"))
    assert responder_api.delete(f"/api/v1/subscriptions/{other.pk}/").status_code == 404
    assert Subscription.objects.filter(pk=other.pk).exists()


# --- who may subscribe whom: one rule for the admin and the API (docs/response.md) --------------------------


def test_subscription_create_lets_only_managers_subscribe_others(service, responder, manager):
    other = UserFactory(username="other")
    with pytest.raises(ValidationError) as error:
        subscription_create(actor=responder, service=service, user=other)
    assert "Only managers" in error.value.message_dict["user"][0]
    with pytest.raises(ValidationError) as error:
        subscription_create(actor=responder, service=service, email="outside@example.com")
    assert "Only managers" in error.value.message_dict["email"][0]
    assert not Subscription.objects.exists()

    assert subscription_create(actor=responder, service=service, user=responder).user == responder
    assert subscription_create(actor=manager, service=service, user=other).user == other
    assert subscription_create(actor=manager, service=service, email="outside@example.com").email


def test_responder_in_the_admin_subscribes_only_themselves(client, responder, service):
    other = UserFactory(username="other")
    client.force_login(responder)
    for posted in ({"user": other.pk}, {"email": "outside@example.com"}):
        response = client.post(reverse("admin:incidents_subscription_add"), {"service": service.pk, **posted})
        assert response.status_code == 302
    assert list(Subscription.objects.values_list("user__username", "email", "service")) == [
        ("responder", "", service.pk)
    ]
    form = client.get(reverse("admin:incidents_subscription_add")).context["adminform"].form
    assert sorted(form.fields) == ["incident", "service"]


def test_responder_sees_only_their_own_subscriptions_in_the_admin(client, responder, service):
    subscription_create(actor=None, service=service, email="exec@example.com")
    mine = subscription_create(actor=responder, service=service, user=responder)
    client.force_login(responder)
    response = client.get(reverse("admin:incidents_subscription_changelist"))
    assert [s.pk for s in response.context["cl"].result_list] == [mine.pk]


def test_manager_in_the_admin_subscribes_an_outside_address(client, manager, service):
    client.force_login(manager)
    response = client.post(reverse("admin:incidents_subscription_add"), {"service": service.pk, "email": "VP@x.com"})
    assert response.status_code == 302
    assert Subscription.objects.get().email == "vp@x.com"


def test_manager_in_the_admin_gets_the_rule_as_a_form_error(client, manager, service):
    client.force_login(manager)
    response = client.post(reverse("admin:incidents_subscription_add"), {"service": service.pk})
    assert response.status_code == 200
    assert "Give a user or an e-mail address." in response.context["adminform"].form.errors["email"]
    assert not Subscription.objects.exists()


def test_manager_cannot_edit_a_subscription_around_the_rule(client, manager, service):
    subscription = subscription_create(actor=None, service=service, email="exec@example.com")
    client.force_login(manager)
    url = reverse("admin:incidents_subscription_change", args=[subscription.pk])
    assert client.get(url).status_code == 200  # shown read-only
    client.post(url, {"service": service.pk, "email": "not an address"})
    subscription.refresh_from_db()
    assert subscription.email == "exec@example.com"
