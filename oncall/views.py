"""Non-API views: iCal feeds at unguessable token URLs (no login: calendar apps cannot sign in)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET

from oncall import ical
from oncall.models import CalendarFeed, Rotation


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def rotation_ical(request: HttpRequest, token: str) -> HttpResponse:
    rotation = get_object_or_404(Rotation, ical_token=token)
    return _ics(ical.rotation_feed(rotation=rotation, now=timezone.now()), f"rotation-{rotation.pk}.ics")


@require_GET
def person_ical(request: HttpRequest, token: str) -> HttpResponse:
    feed = get_object_or_404(CalendarFeed.objects.select_related("user"), token=token)
    return _ics(ical.person_feed(user=feed.user, now=timezone.now()), "oncall.ics")
