"""`/incident …` slash commands: parse, check the user's permissions, call the incident services, and
answer in Slack's JSON format. Every refusal explains itself and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Service, Severity
from oncall import formatting
from oncall.errors import DomainError
from oncall.models import ContactMethod, Team
from oncall.selectors import oncall_now

HELP = (
    "*Firebreak commands*\n"
    "`/incident declare <P0-P3> <service> <title>` declare an incident\n"
    "`/incident ack <ref>` acknowledge (you become commander if there is none)\n"
    "`/incident mitigate <ref>` mark mitigated\n"
    "`/incident resolve <ref>` resolve\n"
    "`/incident update <ref> <message>` post a status update for stakeholders\n"
    "`/incident oncall [team]` who is on call now and next\n"
    "`/incident help` this help"
)


class CommandError(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    text: str
    public: bool = False

    def as_slack(self) -> dict:
        return {
            "response_type": "in_channel" if self.public else "ephemeral",
            "text": self.text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": self.text[:3000]}}],
        }


def slack_user(slack_user_id: str) -> AbstractBaseUser | None:
    method = (
        ContactMethod.objects.filter(kind=ContactMethod.Kind.SLACK, address=slack_user_id, user__is_active=True)
        .select_related("user")
        .order_by("position", "id")
        .first()
    )
    return method.user if method else None


def _require(user: AbstractBaseUser, perm: str, what: str) -> None:
    if not user.has_perm(perm):
        raise CommandError(f"You are not allowed to {what} (your Firebreak account lacks `{perm}`).")


def _incident(ref: str) -> Incident:
    incident = Incident.objects.select_related("service__team").filter(ref__iexact=ref.strip()).first()
    if incident is None:
        raise CommandError(f"No incident {ref!r}. References look like INC-2026-14.")
    return incident


def _describe(incident: Incident) -> str:
    practice = "[PRACTICE] " if incident.is_practice else ""
    return f"{practice}*{incident.ref}* ({incident.severity}, {incident.service.name}) {incident.title}"


def _declare(user, args: list[str]) -> Reply:
    _require(user, "incidents.add_incident", "declare incidents")
    if len(args) < 3:
        raise CommandError("Usage: `/incident declare <P0-P3> <service> <title>`")
    severity, service_key, title = args[0].upper(), args[1], " ".join(args[2:])
    if severity not in Severity.values:
        raise CommandError(f"Severity must be one of {', '.join(Severity.values)}, not {args[0]!r}.")
    service = (
        Service.objects.select_related("team").filter(Q(slug__iexact=service_key) | Q(name__iexact=service_key)).first()
    )
    if service is None:
        raise CommandError(f"No service {service_key!r}. Use the service's slug, for example `checkout`.")
    incident = services.incident_declare(title=title, severity=severity, service=service, actor=user)
    text = f":rotating_light: {_describe(incident)} declared by {user.get_username()}."
    if incident.channel:
        text += f"\nIncident channel: #{incident.channel}"
    return Reply(text, public=True)


def _transition(user, args: list[str], name: str) -> Reply:
    _require(user, "incidents.change_incident", f"{name} incidents")
    if len(args) != 1:
        raise CommandError(f"Usage: `/incident {name} <ref>`")
    incident = _incident(args[0])
    action = {
        "ack": services.incident_acknowledge,
        "mitigate": services.incident_mitigate,
        "resolve": services.incident_resolve,
    }[name]
    incident = action(incident=incident, actor=user)
    return Reply(f"{_describe(incident)} is now {incident.get_status_display().lower()}.", public=True)


def _update(user, args: list[str]) -> Reply:
    _require(user, "incidents.add_statusupdate", "post status updates")
    if len(args) < 2:
        raise CommandError("Usage: `/incident update <ref> <message>`")
    incident = _incident(args[0])
    update = services.status_update_create(incident=incident, author=user, message=" ".join(args[1:]))
    return Reply(f":memo: Status update on {_describe(incident)}:\n{update.message}", public=True)


def _person(user) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def _oncall(args: list[str]) -> Reply:
    team = None
    if args:
        key = " ".join(args)
        team = Team.objects.filter(Q(slug__iexact=key) | Q(name__iexact=key)).first()
        if team is None:
            raise CommandError(f"No team {key!r}. Use the team's slug.")
    entries = oncall_now(at=timezone.now(), team_id=team.pk if team else None)
    if not entries:
        return Reply(f"No active rotations{f' for {team.name}' if team else ''}.")
    lines = []
    for entry in entries:
        now_text = "a gap (nobody)" if entry.is_gap else _person(entry.holder)
        rotation = entry.rotation
        line = f"*{entry.team_name}* {rotation.name} ({rotation.get_layer_display().lower()} layer): {now_text}"
        if entry.until:
            line += f" until {formatting.when(entry.until, rotation.timezone)} ({rotation.timezone})"
        if entry.next_holder is not None:
            line += f"; next {_person(entry.next_holder)}"
        lines.append(line)
    return Reply("\n".join(lines))


def run_command(*, slack_user_id: str, text: str) -> Reply:
    """One slash command from a verified request."""
    args = (text or "").split()
    name = args[0].lower() if args else "help"
    if name in ("help", "?"):
        return Reply(HELP)
    user = slack_user(slack_user_id)
    if user is None:
        return Reply(
            "Firebreak does not know your Slack account. Ask a manager to add your Slack member ID "
            f"(`{slack_user_id}`) as a Slack contact method of your Firebreak user, then try again."
        )
    try:
        if name == "declare":
            return _declare(user, args[1:])
        if name in ("ack", "acknowledge"):
            return _transition(user, args[1:], "ack")
        if name in ("mitigate", "resolve"):
            return _transition(user, args[1:], name)
        if name == "update":
            return _update(user, args[1:])
        if name == "oncall":
            return _oncall(args[1:])
        raise CommandError(f"Unknown command {name!r}.\n{HELP}")
    except CommandError as exc:
        return Reply(f":warning: {exc}")
    except DomainError as exc:
        return Reply(f":warning: {exc.message}")
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            detail = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        else:
            detail = " ".join(exc.messages)
        return Reply(f":warning: {detail}")
