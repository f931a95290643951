"""Security response headers: a Content-Security-Policy and a Permissions-Policy on every response.

Django's SecurityMiddleware already sends X-Content-Type-Options, Referrer-Policy and
Cross-Origin-Opener-Policy (see settings); this middleware adds what Django 5.2 does not.

The policy allows scripts only from our own origin: no inline script anywhere. The admin needs none, and
Swagger UI at /api/docs/ is served by drf-spectacular's split view, whose initialiser is a separate script
URL instead of an inline <script>. Inline *styles* are allowed: the admin and our templates use `style=`
attributes (severity badges, charts), and styles cannot run code.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

DEFAULT_PERMISSIONS_POLICY: dict[str, str] = {
    "accelerometer": "()",
    "camera": "()",
    "geolocation": "()",
    "gyroscope": "()",
    "magnetometer": "()",
    "microphone": "()",
    "payment": "()",
    "usb": "()",
    "interest-cohort": "()",
}


def content_security_policy() -> str:
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in DEFAULT_CSP.items())


def permissions_policy() -> str:
    return ", ".join(f"{feature}={allow}" for feature, allow in DEFAULT_PERMISSIONS_POLICY.items())


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy, Permissions-Policy and Cross-Origin-Resource-Policy to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = content_security_policy()
        self.csp_header = (
            "Content-Security-Policy-Report-Only" if getattr(settings, "FIREBREAK_CSP_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )  # fmt: skip
        self.permissions = permissions_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(self.csp_header, self.csp)
        response.headers.setdefault("Permissions-Policy", self.permissions)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
