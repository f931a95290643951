"""Admin login with a failure limit per client address and username.

A thin wrapper around `admin.site.login`: each failed POST counts against the pair (address, username) in
the shared cache; once `FIREBREAK_LOGIN_MAX_FAILURES` failures fall within one window of
`FIREBREAK_LOGIN_WINDOW_SECONDS`, the login page answers 429 with the form and an error, without checking
the password, until the window ends. A successful login clears the counter.

The cache being down must not lock people out of the admin during an incident: errors from the cache are
logged and the attempt is let through (the password check still applies).
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

logger = logging.getLogger(__name__)

LOCKED_MESSAGE = "Too many failed attempts for this account from your address. Try again in %(minutes)d minutes."


def client_address(request: HttpRequest) -> str:
    """The client's address; behind a trusted proxy, the last hop it appended to X-Forwarded-For."""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def _key(request: HttpRequest, username: str) -> str:
    raw = f"{client_address(request)}|{username.strip().lower()}"
    return "login-failures:" + hashlib.sha256(raw.encode()).hexdigest()


def _failures(key: str) -> int:
    try:
        return int(cache.get(key, 0))
    except Exception:  # noqa: BLE001 - a cache outage must not block logins
        logger.exception("login throttle: cache unavailable, not limiting")
        return 0


def _record_failure(key: str) -> None:
    try:
        # the window starts at the first failure and is not extended by later ones
        if not cache.add(key, 1, timeout=settings.FIREBREAK_LOGIN_WINDOW_SECONDS):
            cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.FIREBREAK_LOGIN_WINDOW_SECONDS)
    except Exception:  # noqa: BLE001
        logger.exception("login throttle: cache unavailable, failure not counted")


def _clear(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # noqa: BLE001
        logger.exception("login throttle: cache unavailable")


def _locked_response(request: HttpRequest) -> HttpResponse:
    form = AdminAuthenticationForm(request)
    minutes = max(1, settings.FIREBREAK_LOGIN_WINDOW_SECONDS // 60)
    form.errors[NON_FIELD_ERRORS] = form.error_class([LOCKED_MESSAGE % {"minutes": minutes}], error_class="nonfield")
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "form": form,
        "username": request.user.get_username(),
    }
    response = TemplateResponse(request, "admin/login.html", context, status=429)
    response["Retry-After"] = str(settings.FIREBREAK_LOGIN_WINDOW_SECONDS)
    return response


@sensitive_post_parameters()
@csrf_protect
@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return admin.site.login(request)
    username = request.POST.get("username", "")[:150]
    key = _key(request, username)
    if _failures(key) >= settings.FIREBREAK_LOGIN_MAX_FAILURES:
        logger.warning("login throttled for %r from %s", username, client_address(request))
        return _locked_response(request)
    response = admin.site.login(request)
    if request.user.is_authenticated and response.status_code == 302:
        _clear(key)
    else:
        _record_failure(key)
    return response
