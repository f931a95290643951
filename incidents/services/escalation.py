"""The escalation engine: page whoever the service's policy names, step by step, until someone acknowledges.

One `Escalation` row per incident carries the next step, when it is due, and a token. Each step is run by
`run_escalation_task(escalation_id, token)`: it locks the row, exits if the incident is no longer triggered,
the token is stale (a newer step was scheduled) or the step is not due yet, and otherwise pages the step's
people through the notification outbox (one row per person, contact method and step: never twice) and
schedules the next step with a new token. A periodic sweep re-queues steps whose task was lost, so a broker
outage delays paging but never drops it. Who is on call is read from the schedule at the moment of the step.

Lock order (every path that locks both, everywhere): the incident row first, then its escalation row.
`escalation_run` locks the incident before the escalation; `escalation_stop` runs inside a transition that
already holds the incident (incidents.services.lifecycle) and takes it again before the escalation;
`escalation_start` creates the escalation in the transaction that creates the incident. Rows written while
both are held (pages in the outbox, timeline events) come after them. With one order an acknowledge racing
a step waits for the step to commit (or the step waits for the acknowledge, then exits): never a deadlock.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.models import Escalation, Incident, IncidentEvent, Service
from oncall.models import ContactMethod
from oncall.queueing import enqueue_on_commit
from oncall.selectors import escalation_chain, policies_with_steps, team_managers
from oncall.services import notification_enqueue

ACK_SALT = "firebreak.incident-ack"
STOPPING_KINDS = {
    IncidentEvent.Kind.ACKNOWLEDGED: "acknowledged",
    IncidentEvent.Kind.MITIGATED: "mitigated",
    IncidentEvent.Kind.RESOLVED: "resolved",
    IncidentEvent.Kind.CLOSED: "closed",
    IncidentEvent.Kind.CANCELLED: "cancelled",
}


def ack_url(*, incident: Incident, user) -> str:
    """A signed link that lets `user` acknowledge `incident` from the page they received (confirm + POST)."""
    token = signing.dumps({"i": incident.pk, "u": user.pk}, salt=ACK_SALT, compress=True)
    return settings.FIREBREAK_BASE_URL + reverse("incident-ack", args=[token])


def _schedule(escalation: Escalation, at: datetime) -> None:
    from incidents.tasks import run_escalation_task

    escalation.token = uuid.uuid4()
    escalation.next_run_at = at
    token = str(escalation.token)
    delay = max(0.0, (at - timezone.now()).total_seconds())
    enqueue_on_commit(run_escalation_task, escalation.pk, token, countdown=delay)


def on_incident_transition(incident: Incident, kind: str) -> None:
    """Transition listener (registered in IncidentsConfig.ready): start on declare, stop on the first human
    response or the end of the incident."""
    if kind == IncidentEvent.Kind.DECLARED:
        escalation_start(incident=incident)
    elif kind in STOPPING_KINDS:
        escalation_stop(incident=incident, reason=STOPPING_KINDS[kind])


def escalation_start(*, incident: Incident) -> Escalation:
    """Inside the declaring transaction: record the run and queue its first step after commit."""
    with transaction.atomic():
        # read from the database: the caller's Service object may predate a change of policy
        policy_id = (
            Service.objects.filter(pk=incident.service_id).values_list("escalation_policy_id", flat=True).first()
        )
        escalation, created = Escalation.objects.get_or_create(
            incident=incident,
            defaults={
                "policy_id": policy_id,
                "started_at": timezone.now(),
                "next_run_at": timezone.now(),
            },
        )
        if created:
            _schedule(escalation, timezone.now())
            escalation.save(update_fields=["token", "next_run_at"])
    return escalation


def escalation_stop(*, incident: Incident, reason: str) -> Escalation | None:
    with transaction.atomic():
        # the lock order: the incident (already held by the transition calling this), then the escalation
        Incident.objects.select_for_update().filter(pk=incident.pk).values_list("pk", flat=True).first()
        escalation = Escalation.objects.select_for_update().filter(incident=incident).first()
        if escalation is None or escalation.status != Escalation.Status.RUNNING:
            return escalation
        now = timezone.now()
        escalation.status = Escalation.Status.STOPPED
        escalation.finished_at = now
        escalation.next_run_at = None
        escalation.stop_reason = reason
        escalation.save(update_fields=["status", "finished_at", "next_run_at", "stop_reason"])
        IncidentEvent.objects.create(
            incident=incident,
            at=now,
            kind=IncidentEvent.Kind.ESCALATION_STOPPED,
            message=f"Escalation stopped: incident {reason}",
            data={"reason": reason, "steps_run": escalation.step_index},
        )
    return escalation


def _contact_routes(user) -> list[tuple[str, str, str]]:
    """(channel, address, key) for every contact method of the user, e-mail first if none is set up."""
    methods = [
        (m.kind, m.address, f"cm{m.pk}") for m in ContactMethod.objects.filter(user=user).order_by("position", "id")
    ]
    if not methods:
        methods = [(ContactMethod.Kind.EMAIL, user.email or "", "email")]
    return methods


def _page(*, incident: Incident, user, step_index: int, reason: str) -> int:
    link = ack_url(incident=incident, user=user)
    admin = f"{settings.FIREBREAK_BASE_URL}/admin/incidents/incident/{incident.pk}/change/"
    practice = "[PRACTICE] " if incident.is_practice and not incident.title.startswith("[PRACTICE]") else ""
    subject = f"{practice}[{incident.severity}] {incident.ref} {incident.title}"
    body = (
        f"You are paged for {incident.ref}: {incident.title}\n"
        f"Severity {incident.severity} on {incident.service.name}; "
        f"triggered {incident.declared_at:%Y-%m-%d %H:%M} UTC.\n"
        f"{reason}\n\n"
        f"Acknowledge: {link}\n"
        f"Open the incident: {admin}\n"
    )
    if incident.is_practice:
        body = "PRACTICE incident (a game day or drill): respond as usual; it never counts in metrics.\n\n" + body
    if incident.summary:
        body += f"\n{incident.summary}\n"
    html = render_to_string(
        "incidents/page_email.html", {"incident": incident, "reason": reason, "ack_url": link, "admin_url": admin}
    )
    created = 0
    for channel, address, key in _contact_routes(user):
        _, new = notification_enqueue(
            dedupe_key=f"page:{incident.pk}:{step_index}:{user.pk}:{key}",
            user=user,
            channel=channel,
            address=address,
            subject=subject,
            body=body,
            payload={"kind": "page", "incident": incident.ref, "step": step_index, "ack_url": link, "html": html},
        )
        created += int(new)
    return created


def _exhaust(escalation: Escalation, now: datetime) -> None:
    incident = escalation.incident
    escalation.status = Escalation.Status.EXHAUSTED
    escalation.finished_at = now
    escalation.next_run_at = None
    escalation.save(update_fields=["status", "finished_at", "next_run_at"])
    managers = [m.user for m in team_managers(team_id=incident.service.team_id)]
    for user in managers:
        notification_enqueue(
            dedupe_key=f"escalation-exhausted:{incident.pk}:{user.pk}",
            user=user,
            subject=f"[{incident.severity}] {incident.ref} is not acknowledged: escalation exhausted",
            body=(
                f"Nobody acknowledged {incident.ref} {incident.title}; every step of the escalation has run.\n"
                f"Acknowledge: {ack_url(incident=incident, user=user)}\n"
            ),
            payload={"kind": "escalation_exhausted", "incident": incident.ref},
        )
    IncidentEvent.objects.create(
        incident=incident,
        at=now,
        kind=IncidentEvent.Kind.ESCALATION_EXHAUSTED,
        message="Nobody acknowledged; every step has run. The team's managers were told.",
        data={"managers": [user.get_username() for user in managers]},
    )


def escalation_run(*, escalation_id: int, token: str | None = None) -> Escalation | None:
    """Run the escalation's due step. Safe under duplicate, late or concurrent delivery."""
    incident_id = Escalation.objects.filter(pk=escalation_id).values_list("incident_id", flat=True).first()
    if incident_id is None:
        return None
    with transaction.atomic():
        # the lock order (module docstring): the incident, then its escalation
        incident = Incident.objects.select_for_update(of=("self",)).select_related("service__team").get(pk=incident_id)
        escalation = Escalation.objects.select_for_update().get(pk=escalation_id)
        escalation.incident = incident
        now = timezone.now()  # after the locks: a step that waited for an acknowledge sees it
        if escalation.status != Escalation.Status.RUNNING:
            return escalation
        if token is not None and not hmac.compare_digest(str(escalation.token), str(token)):
            return escalation  # superseded: a newer step was scheduled
        if escalation.next_run_at and escalation.next_run_at > now:
            return escalation  # not due yet (an early duplicate)
        if incident.status != Incident.Status.TRIGGERED:
            escalation.status = Escalation.Status.STOPPED
            escalation.finished_at, escalation.next_run_at = now, None
            escalation.stop_reason = incident.status
            escalation.save(update_fields=["status", "finished_at", "next_run_at", "stop_reason"])
            return escalation
        if escalation.policy_id is None:
            chain_users = [[m.user for m in team_managers(team_id=incident.service.team_id)]]
            delays = [15]
            reason = "The service has no escalation policy: its team's managers are paged."
        else:
            policy = policies_with_steps().get(pk=escalation.policy_id)
            chain = escalation_chain(policy=policy, at=now)
            chain_users = [step.users for step in chain]
            delays = [step.delay_minutes for step in chain]
            reason = f"Escalation policy {policy.name}"
        while escalation.step_index < len(chain_users):
            index = escalation.step_index
            users = chain_users[index]
            escalation.step_index += 1
            if not users:
                IncidentEvent.objects.create(
                    incident=incident,
                    at=now,
                    kind=IncidentEvent.Kind.ESCALATION_GAP,
                    message=f"Step {index + 1}: nobody on call (a gap); moving to the next step at once",
                    data={"step": index},
                )
                continue
            paged = sum(
                _page(incident=incident, user=user, step_index=index, reason=f"{reason}, step {index + 1}.")
                for user in users
            )
            IncidentEvent.objects.create(
                incident=incident,
                at=now,
                kind=IncidentEvent.Kind.PAGED,
                message=f"Step {index + 1}: paged {', '.join(u.get_username() for u in users)}",
                data={"step": index, "users": [u.get_username() for u in users], "notifications": paged},
            )
            _schedule(escalation, now + timedelta(minutes=delays[index]))
            escalation.save(update_fields=["step_index", "token", "next_run_at"])
            return escalation
        _exhaust(escalation, now)
    return escalation


def on_notification_failed(notification) -> None:
    """A page (or any notification about an incident) that finally failed goes on the incident's timeline."""
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    ref = payload.get("incident")
    if not ref:
        return
    incident = Incident.objects.filter(ref=ref).first()
    if incident is None:
        return
    who = notification.user.get_username() if notification.user else notification.address
    IncidentEvent.objects.create(
        incident=incident,
        at=timezone.now(),
        kind=IncidentEvent.Kind.NOTIFICATION_FAILED,
        message=(
            f"{payload.get('kind', 'notification')} to {who} by {notification.channel} failed: {notification.error}"
        ),
        data={"notification": notification.pk, "channel": notification.channel, "kind": payload.get("kind")},
    )
