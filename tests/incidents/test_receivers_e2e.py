"""Real senders against a live server: the official PagerDuty Python client, and a real Prometheus
Alertmanager driven by amtool (marked e2e; skipped when the Debian package is not installed)."""

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from incidents.alerting import services
from incidents.models import Alert, Incident
from tests.incidents.factories import ServiceFactory

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _plain_http_to(live_url):
    """The official client only accepts https:// base URLs (production Firebreak sits behind TLS); this
    transport sends its requests, unchanged otherwise, to the plain-HTTP live server over real TCP."""
    import httpx2

    target = httpx2.URL(live_url)

    class ToLiveServer(httpx2.HTTPTransport):
        def handle_request(self, request):
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            return super().handle_request(request)

    return ToLiveServer()


def test_pagerduty_official_client_triggers_acknowledges_and_resolves(live_server, transactional_db):
    pagerduty = pytest.importorskip("pagerduty")
    service = ServiceFactory(slug="checkout")
    _, routing_key = services.integration_create(service=service, kind="pagerduty_v2")
    client = pagerduty.EventsApiV2Client(
        routing_key, base_url="https://localhost/hooks/pagerduty", transport=_plain_http_to(live_server.url)
    )
    with client:  # closing it ends the kept-alive connection and the live server's database session with it
        dedup_key = client.trigger("Checkout 5xx above 5%", "checkout-prod", severity="critical")

        incident = Incident.objects.get()
        assert (incident.severity, incident.status, incident.service) == ("P1", "triggered", service)
        assert Alert.objects.get().fingerprint == dedup_key

        client.acknowledge(dedup_key)
        incident.refresh_from_db()
        assert incident.status == "acknowledged"

        client.resolve(dedup_key)
        incident.refresh_from_db()
        assert incident.status == "resolved"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path):
    """A factory: start a real Alertmanager whose single receiver posts to `url`; stopped after the test."""
    if not (ALERTMANAGER and AMTOOL):
        pytest.skip("prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager)")
    processes = []

    def start(url: str) -> str:
        port = _free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: firebreak\n"
            "  group_by: [alertname, service]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: firebreak\n"
            "    webhook_configs:\n"
            f"      - url: {url}\n"
            "        send_resolved: true\n"
        )
        process = subprocess.Popen(  # noqa: S603
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "alertmanager.log").open("w"),
        )
        processes.append(process)
        address = f"http://127.0.0.1:{port}"
        ready = _wait_for(lambda: _amtool(address, "config", "show").returncode == 0, timeout=15)
        assert ready, (tmp_path / "alertmanager.log").read_text()
        return address

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _amtool(address, *args):
    return subprocess.run(  # noqa: S603
        [AMTOOL, f"--alertmanager.url={address}", *args], capture_output=True, text=True, timeout=20, check=False
    )


@pytest.mark.e2e
def test_real_alertmanager_opens_and_auto_resolves_an_incident(live_server, transactional_db, alertmanager):
    service = ServiceFactory(slug="checkout")
    _, key = services.integration_create(service=service, kind="alertmanager")
    address = alertmanager(f"{live_server.url}/hooks/alertmanager/{key}/")
    labels = ["alertname=HighErrorRate", "service=checkout", "severity=critical"]

    added = _amtool(address, "alert", "add", *labels, "--annotation=summary=5xx rate above 5% on checkout")
    assert added.returncode == 0, added.stderr

    assert _wait_for(lambda: Incident.objects.exists()), "Alertmanager never delivered the firing alert"
    incident = Incident.objects.get()
    assert (incident.severity, incident.title, incident.source) == ("P1", "5xx rate above 5% on checkout", "alert")
    alert = Alert.objects.get()
    assert alert.starts_at.microsecond or alert.starts_at  # Alertmanager sends nanosecond timestamps
    assert alert.group_key.startswith("{}:")

    end = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resolved = _amtool(address, "alert", "add", *labels, f"--end={end}")
    assert resolved.returncode == 0, resolved.stderr

    assert _wait_for(lambda: Incident.objects.filter(status="resolved").exists()), "no resolved notification"
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert Alert.objects.count() == 1
    assert Incident.objects.count() == 1
