"""Automated response: request a run (a person's click or a rule), and execute it (the Celery task)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.automation import selectors, templating
from incidents.models import AutomationAction, AutomationRule, AutomationRun, Incident, IncidentEvent
from oncall import egress
from oncall.errors import DomainError
from oncall.queueing import enqueue_on_commit

logger = logging.getLogger(__name__)

RESPONSE_KEEP = 2000
SIGNATURE_HEADER = "X-Firebreak-Signature"
TIMESTAMP_HEADER = "X-Firebreak-Timestamp"


def _user(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if actor is not None and actor.is_authenticated else None


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` with the action's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _requested_event(run: AutomationRun) -> None:
    who = f"rule #{run.rule_id}" if run.requested_by_id is None and run.rule_id else str(run.requested_by or "system")
    IncidentEvent.objects.create(
        incident_id=run.incident_id,
        at=run.created_at,
        kind=IncidentEvent.Kind.AUTOMATION,
        actor=run.requested_by,
        message=f"Automated action {run.action.name} requested by {who}",
        data={"automation_run_id": run.pk, "action": run.action.name, "status": run.status},
    )


def automation_run_request(
    *,
    action: AutomationAction,
    incident: Incident,
    actor: AbstractBaseUser | None,
    rule: AutomationRule | None = None,
) -> AutomationRun:
    """A person (or a rule) asks for an action on an incident: a pending run, executed by a task after commit."""
    from incidents.automation.tasks import run_automation_task

    if not action.is_active:
        raise DomainError(f"The action {action.name} is disabled.", code="action_disabled", field="action")
    if not incident.is_open:
        raise DomainError(
            f"{incident.ref} is {incident.get_status_display().lower()}; actions run only on open incidents.",
            code="incident_not_open",
            field="incident",
        )
    with transaction.atomic():
        run = AutomationRun.objects.create(
            action=action, incident=incident, rule=rule, requested_by=_user(actor), created_at=timezone.now()
        )
        _requested_event(run)
        enqueue_on_commit(run_automation_task, run.pk)
    return run


def automation_runs_for_incident(*, incident: Incident) -> list[AutomationRun]:
    """The automatic rules matching a (newly declared) incident, each run once per incident however often
    this is called."""
    runs = []
    if not incident.is_open:
        return runs
    for rule in selectors.rules_matching(incident=incident, auto=True):
        if AutomationRun.objects.filter(incident=incident, rule=rule, requested_by__isnull=True).exists():
            continue
        try:
            with transaction.atomic():
                runs.append(automation_run_request(action=rule.action, incident=incident, actor=None, rule=rule))
        except IntegrityError:  # requested concurrently: the unique constraint kept one
            continue
    return runs


def _finish(run: AutomationRun, *, status: str, **fields) -> AutomationRun:
    with transaction.atomic():
        run = AutomationRun.objects.select_for_update().select_related("action").get(pk=run.pk)
        run.status = status
        run.finished_at = timezone.now()
        for name, value in fields.items():
            setattr(run, name, value)
        run.save()
        if status == AutomationRun.Status.SUCCEEDED:
            outcome = f"succeeded (HTTP {run.response_code} in {run.duration_ms} ms)"
        elif run.response_code:
            outcome = f"failed (HTTP {run.response_code} in {run.duration_ms} ms)"
        else:
            outcome = f"{status}: {run.error}"
        IncidentEvent.objects.create(
            incident_id=run.incident_id,
            at=run.finished_at,
            kind=IncidentEvent.Kind.AUTOMATION,
            actor=None,
            message=f"Automated action {run.action.name} {outcome}",
            data={
                "automation_run_id": run.pk,
                "action": run.action.name,
                "status": status,
                "response_code": run.response_code,
                "duration_ms": run.duration_ms,
            },
        )
    return run


def automation_run_execute(*, run_id: int) -> AutomationRun | None:
    """Send one pending run. Safe to call twice: only a pending run is claimed, so a re-delivered task exits.
    A run interrupted after its claim stays `running` (visible in the admin) rather than being sent twice."""
    with transaction.atomic():
        run = (
            AutomationRun.objects.select_for_update(skip_locked=True)
            .select_related("action", "incident__service__team")
            .filter(pk=run_id, status=AutomationRun.Status.PENDING)
            .first()
        )
        if run is None:
            return None
        run.status = AutomationRun.Status.RUNNING
        run.started_at = timezone.now()
        action = run.action
        context = templating.incident_context(
            incident=run.incident,
            alert_name=(run.rule.alert_name if run.rule_id and run.rule else "")
            or next(iter(sorted(selectors.incident_alert_names(incident=run.incident))), ""),
            action=action.name,
            run_id=run.pk,
        )
        try:
            body = templating.render(action.payload_template, context) if action.payload_template else ""
        except ValidationError as exc:  # a template edited outside the admin's check
            body, template_error = "", "; ".join(exc.messages)
        else:
            template_error = ""
        run.request_method = action.method
        run.request_url = action.url
        run.request_body = body
        run.save(update_fields=["status", "started_at", "request_method", "request_url", "request_body"])
    if template_error:
        return _finish(run, status=AutomationRun.Status.REFUSED, error=f"payload template: {template_error}")
    try:
        destination = egress.check_destination(
            action.url,
            allowed_hosts=settings.FIREBREAK_AUTOMATION_ALLOWED_HOSTS,
            allowed_networks=settings.FIREBREAK_AUTOMATION_ALLOWED_NETWORKS,
        )
    except egress.EgressRefused as exc:
        logger.warning("automation run %s refused: %s", run.pk, exc)
        return _finish(run, status=AutomationRun.Status.REFUSED, error=str(exc))
    payload = body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Firebreak-Automation",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret=action.secret, timestamp=timestamp, body=payload),
        "X-Firebreak-Run": str(run.pk),
    }
    started = time.monotonic()
    try:
        response = egress.send(
            destination, method=action.method, body=payload, headers=headers, timeout=action.timeout_seconds
        )
    except (OSError, http.client.HTTPException) as exc:
        duration_ms = int((time.monotonic() - started) * 1000)
        return _finish(
            run, status=AutomationRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}", duration_ms=duration_ms
        )
    status = AutomationRun.Status.SUCCEEDED if 200 <= response.status < 300 else AutomationRun.Status.FAILED
    return _finish(
        run,
        status=status,
        response_code=response.status,
        response_body=response.body[:RESPONSE_KEEP],
        duration_ms=response.duration_ms,
        error="" if status == AutomationRun.Status.SUCCEEDED else f"HTTP {response.status}",
    )


def automation_runs_requeue(*, older_than_seconds: int = 60) -> list[int]:
    """The sweep: pending runs whose task never arrived (broker outage) are queued again. Queuing a run twice
    is harmless: only one task claims it."""
    from incidents.automation.tasks import run_automation_task

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        AutomationRun.objects.filter(status=AutomationRun.Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
    for run_id in ids:
        run_automation_task.delay(run_id)
    return ids
