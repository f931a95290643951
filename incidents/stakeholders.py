"""Stakeholder subscriptions: people (users or e-mail addresses) following a service or one incident get
its stakeholder-audience status updates by e-mail through the outbox, once per update and recipient."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q

from incidents.models import Incident, Service, StatusUpdate, Subscription
from oncall.models import Notification
from oncall.roles import is_manager
from oncall.services import notification_enqueue


def subscription_check(
    *,
    actor: AbstractBaseUser | None,
    service: Service | None = None,
    incident: Incident | None = None,
    user: AbstractBaseUser | None = None,
    email: str = "",
) -> None:
    """The rule for a new subscription, the same in the admin and the API: a service or one incident, a user
    or an e-mail address; and only managers subscribe someone else or an outside address (docs/response.md).
    `actor` None is the system (seed data, imports). Raises ValidationError naming the field."""
    email = (email or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if (service is None) == (incident is None):
        errors["service"] = ["Subscribe to a service or to one incident."]
    if (user is None) == (not email):
        errors["email"] = ["Give a user or an e-mail address."]
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = [f"{email!r} is not an e-mail address."]
    if actor is not None and not is_manager(actor):
        if email:
            errors["email"] = ["Only managers subscribe an outside e-mail address; subscribe yourself instead."]
        elif user is not None and user.pk != actor.pk:
            errors["user"] = ["Only managers subscribe other people; you can subscribe yourself."]
    if errors:
        raise ValidationError(errors)


def subscription_create(
    *,
    actor: AbstractBaseUser | None,
    service: Service | None = None,
    incident: Incident | None = None,
    user: AbstractBaseUser | None = None,
    email: str = "",
) -> Subscription:
    """Subscribe a user or an address to a service or one incident; the same subscription twice is one."""
    email = (email or "").strip().lower()
    subscription_check(actor=actor, service=service, incident=incident, user=user, email=email)
    with transaction.atomic():
        existing = Subscription.objects.filter(service=service, incident=incident, user=user, email=email).first()
        if existing is not None:
            return existing
        return Subscription.objects.create(service=service, incident=incident, user=user, email=email)


def subscribers_of(*, incident: Incident) -> list[Subscription]:
    return list(
        Subscription.objects.filter(Q(incident=incident) | Q(service_id=incident.service_id))
        .select_related("user")
        .order_by("id")
    )


def status_update_notify_subscribers(*, update: StatusUpdate) -> int:
    """E-mail a stakeholder update to every subscriber once (a person subscribed twice gets one mail)."""
    if update.audience != StatusUpdate.Audience.STAKEHOLDERS:
        return 0
    incident = update.incident
    practice = "[PRACTICE] " if incident.is_practice else ""
    subject = f"{practice}{incident.ref} update: {incident.title}"
    url = f"{settings.FIREBREAK_BASE_URL}/admin/incidents/incident/{incident.pk}/change/"
    body = (
        f"{practice}{incident.ref} ({incident.severity}, {incident.service.name}) — {incident.get_status_display()}\n\n"
        f"{update.message}\n\n{update.at:%Y-%m-%d %H:%M} UTC\n{url}\n\n"
        "You receive this because you subscribed to this incident or its service."
    )
    sent = 0
    for subscription in subscribers_of(incident=incident):
        recipient = f"user:{subscription.user_id}" if subscription.user_id else f"email:{subscription.email}"
        _, created = notification_enqueue(
            dedupe_key=f"incidents:stakeholder-update:{update.pk}:{recipient}",
            user=subscription.user,
            address=subscription.email or None,
            channel=Notification.Channel.EMAIL,
            subject=subject,
            body=body,
            payload={"kind": "stakeholder_update", "status_update": update.pk, "incident": incident.pk},
        )
        sent += created
    return sent


def subscription_delete(*, subscription: Subscription) -> None:
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).delete()
