"""Outbound HTTP that cannot be aimed at our own network by mistake or by a crafted URL: the one egress path
of automated actions, Slack webhooks and webhook contact methods (each with its own host allow-list).

A URL's host must be on an allow-list; the host is resolved once and every address is checked with
`ipaddress`: loopback, private, link-local, multicast, reserved and unspecified addresses are refused
unless their network is explicitly allow-listed. The connection then goes to the vetted address (no second
lookup, so DNS rebinding cannot swap it), redirects are not followed, and the response is read up to a cap.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 64 * 1024


class EgressRefused(Exception):
    """The destination is not allowed; nothing was sent."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    duration_ms: int


def _host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed_hosts:
        pattern = pattern.strip().lower().rstrip(".")
        if not pattern:
            continue
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


def _networks(allowed_networks: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item.strip(), strict=False) for item in allowed_networks if item.strip()]


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    return "non-public"


def check_destination(url: str, *, allowed_hosts: list[str], allowed_networks: list[str]) -> Destination:
    """Resolve and vet the URL's destination or raise EgressRefused explaining why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EgressRefused(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    host = parts.hostname or ""
    if not host:
        raise EgressRefused("the URL has no host")
    if parts.username or parts.password:
        raise EgressRefused("credentials in the URL are not allowed")
    if not _host_allowed(host, allowed_hosts):
        raise EgressRefused(f"host {host!r} is not on the allow-list")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EgressRefused(f"host {host!r} does not resolve: {exc}") from exc
    networks = _networks(allowed_networks)
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        public = address.is_global and not address.is_multicast
        if not public and not any(address in network for network in networks):
            raise EgressRefused(
                f"host {host!r} resolves to the {_kind(address)} address {address}, which is not allowed"
            )
        addresses.append(str(address))
    if not addresses:
        raise EgressRefused(f"host {host!r} has no address")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Destination(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout, context=ssl.create_default_context())
        self._address = destination.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def send(destination: Destination, *, method: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """One request to the vetted address. Network errors propagate (OSError, http.client.HTTPException)."""
    connection_class = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(destination, timeout)
    started = time.monotonic()
    try:
        connection.request(method, destination.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(MAX_RESPONSE_BYTES)
    finally:
        connection.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return Response(status=response.status, body=data.decode("utf-8", errors="replace"), duration_ms=duration_ms)
