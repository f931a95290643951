"""Acknowledge from a page: the link in every page is signed for one person and one incident.

GET shows what will be acknowledged (mail scanners that follow links change nothing); POST acknowledges as
the person the link was made for."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core import signing
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from incidents import services
from incidents.models import Incident
from incidents.services.escalation import ACK_SALT
from oncall.errors import DomainError

MAX_AGE = 7 * 24 * 3600


@require_http_methods(["GET", "POST"])
def acknowledge_from_page(request, token: str):
    try:
        data = signing.loads(token, salt=ACK_SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        raise Http404("This acknowledge link is invalid or has expired.") from None
    incident = Incident.objects.select_related("service").filter(pk=data.get("i")).first()
    user = get_user_model().objects.filter(pk=data.get("u"), is_active=True).first()
    if incident is None or user is None:
        raise Http404("This acknowledge link is invalid or has expired.")
    context = {"incident": incident, "user": user, "done": False, "error": ""}
    if request.method == "POST":
        try:
            incident = services.incident_acknowledge(incident=incident, actor=user)
            context.update(incident=incident, done=True)
        except DomainError as exc:
            context["error"] = exc.message
    return render(request, "incidents/ack.html", context, status=409 if context["error"] else 200)
