"""Helpers shared by the alert-ingestion tests: the reference payloads and integrations with known keys."""

import json
from datetime import UTC, datetime
from pathlib import Path

from django.urls import reverse

from incidents.alerting import services

REFERENCE = Path("/work/shared/reference")
LOCAL_REFERENCE = Path(__file__).parent / "reference"
NOW = datetime(2026, 11, 27, 9, 12, 0, tzinfo=UTC)  # the time of the reference payloads


def reference(name: str) -> dict:
    """A real payload from the shared reference folder (a copy is kept next to the tests)."""
    path = REFERENCE / name if (REFERENCE / name).exists() else LOCAL_REFERENCE / name
    return json.loads(path.read_text())


def make_integration(service, kind="alertmanager", **kwargs):
    integration, key = services.integration_create(service=service, kind=kind, **kwargs)
    return integration, key


def post_json(client, url, payload, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(url, data=body, content_type="application/json", **extra)


def alertmanager_url(key):
    return reverse("hook-alertmanager", args=[key])


def generic_url(key):
    return reverse("hook-generic", args=[key])


PAGERDUTY_URL = "/hooks/pagerduty/v2/enqueue"
