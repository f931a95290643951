"""Security headers on every kind of response: admin, API, Swagger UI, health, webhooks, errors."""

import pytest
from django.core.management import call_command

from config.security import content_security_policy

PATHS = ["/admin/login/", "/api/v1/incidents/", "/api/docs/", "/api/schema/", "/healthz", "/no-such-page/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response["Content-Security-Policy"] == content_security_policy()
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_csp_allows_no_inline_or_foreign_script():
    directives = dict(part.split(" ", 1) for part in content_security_policy().split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in content_security_policy()


@pytest.mark.django_db
def test_swagger_ui_page_has_no_inline_script(client, manager):
    client.force_login(manager)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>" not in html  # the initialiser is a script file (split view)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_webhook_error_has_headers(client):
    response = client.post("/hooks/generic/nope/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert "Content-Security-Policy" in response


def test_check_deploy_is_clean_with_production_settings(monkeypatch):
    """`check --deploy` finds nothing with the production values of the transport settings."""
    from django.conf import settings

    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
    monkeypatch.setattr(settings, "DEBUG", False)
    monkeypatch.setattr(settings, "SECURE_SSL_REDIRECT", True)
    monkeypatch.setattr(settings, "SESSION_COOKIE_SECURE", True)
    monkeypatch.setattr(settings, "CSRF_COOKIE_SECURE", True)
    monkeypatch.setattr(settings, "SECURE_HSTS_SECONDS", 31536000)
    monkeypatch.setattr(settings, "SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    monkeypatch.setattr(settings, "SECURE_HSTS_PRELOAD", True)
    monkeypatch.setattr(settings, "SECRET_KEY", "x" * 20 + "a-long-random-production-secret-key-0123456789")
    monkeypatch.setattr(settings, "ALLOWED_HOSTS", ["firebreak.example.com"])
    call_command("check", "--deploy", "--fail-level", "WARNING")
