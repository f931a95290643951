"""Request bodies from a template over whitelisted incident fields: `{{ field }}` placeholders only.

No attribute access, filters or code: a placeholder names one key of a flat dict of strings. Values are
JSON-escaped, so a title with quotes keeps a JSON body valid.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.core.exceptions import ValidationError

from incidents.models import Incident

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
FIELDS = (
    "ref", "title", "severity", "status", "service", "service_slug", "team", "channel", "declared_at", "url",
    "is_practice", "alert_name", "action", "run_id",
)  # fmt: skip


def check_template(template: str) -> None:
    unknown = sorted({name for name in PLACEHOLDER.findall(template or "") if name not in FIELDS})
    if unknown:
        raise ValidationError(
            {"payload_template": [f"Unknown placeholder(s) {', '.join(unknown)}; use {', '.join(FIELDS)}."]}
        )


def incident_context(*, incident: Incident, alert_name: str = "", action: str = "", run_id: int = 0) -> dict[str, str]:
    return {
        "ref": incident.ref,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "service": incident.service.name,
        "service_slug": incident.service.slug,
        "team": incident.service.team.slug,
        "channel": incident.channel,
        "declared_at": incident.declared_at.isoformat(),
        "url": f"{settings.FIREBREAK_BASE_URL}/admin/incidents/incident/{incident.pk}/change/",
        "is_practice": "true" if incident.is_practice else "false",
        "alert_name": alert_name,
        "action": action,
        "run_id": str(run_id),
    }


def render(template: str, context: dict[str, str]) -> str:
    check_template(template)

    def replace(match: re.Match) -> str:
        return json.dumps(str(context.get(match.group(1), "")))[1:-1]

    return PLACEHOLDER.sub(replace, template or "")
