"""Helpers of the response tests: alerts attached to an incident, and a real local HTTP server."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.utils import timezone

from incidents.models import Alert
from tests.incidents.alerting_helpers import make_integration


def attach_alert(incident, *, alertname: str, runbook_url: str = "", fingerprint: str = "") -> Alert:
    fingerprint = fingerprint or f"fp-{alertname}-{incident.pk}"
    integration, _ = make_integration(incident.service, "alertmanager", name=f"am-{fingerprint}")
    now = timezone.now()
    return Alert.objects.create(
        integration=integration,
        fingerprint=fingerprint,
        group_key=f"group-{incident.pk}",
        labels={"alertname": alertname, "severity": "critical"},
        annotations={"runbook_url": runbook_url} if runbook_url else {},
        starts_at=now,
        received_at=now,
        last_received_at=now,
        service=incident.service,
        severity=incident.severity,
        incident=incident,
    )


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def active_html(html: str) -> list[str]:
    """What in the HTML could run in a browser: script tags, event-handler attributes, javascript: URLs."""
    parser = _Tags()
    parser.feed(html)
    found = []
    for tag, attrs in parser.tags:
        if tag in ("script", "iframe", "object", "embed", "style"):
            found.append(tag)
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"{tag}[{name}]")
            if name in ("href", "src") and (value or "").strip().lower().startswith(("javascript:", "data:")):
                found.append(f"{tag}[{name}={value}]")
    return found


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread, answering `status` and recording every request."""

    status: int = 200
    reply: bytes = b'{"ok": true}'
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_server() -> tuple[LocalServer, ThreadingHTTPServer]:
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.requests.append(Received(self.command, self.path, dict(self.headers), body))
            if state.delay:
                threading.Event().wait(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.reply)))
            self.end_headers()
            self.wfile.write(state.reply)

        do_POST = do_PUT = _handle

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
