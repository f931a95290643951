"""Runbook writes: a new runbook, a new immutable version, a review, and the versions an incident was shown."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from incidents.models import Incident, IncidentRunbook, Runbook, RunbookVersion, Service
from incidents.runbooks import selectors


def _user(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if actor is not None and actor.is_authenticated else None


def runbook_create(
    *,
    service: Service,
    title: str,
    body: str,
    author: AbstractBaseUser | None,
    alert_name: str = "",
    source_url: str = "",
    slug: str = "",
    change_note: str = "First version",
) -> Runbook:
    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors["title"] = ["A runbook needs a title."]
    if not (body or "").strip():
        errors["body"] = ["A runbook needs a body."]
    slug = slug or slugify(f"{service.slug}-{title}")[:100]
    if Runbook.objects.filter(slug=slug).exists():
        errors["slug"] = [f"A runbook with the slug {slug!r} exists."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        runbook = Runbook.objects.create(
            service=service,
            title=title.strip(),
            slug=slug,
            alert_name=alert_name.strip(),
            source_url=source_url.strip(),
        )
        runbook_edit(runbook=runbook, body=body, change_note=change_note, author=author)
        runbook.refresh_from_db()
    return runbook


def runbook_edit(*, runbook: Runbook, body: str, change_note: str, author: AbstractBaseUser | None) -> RunbookVersion:
    """Write the next numbered version (versions are never changed). The same body again is a no-op."""
    if not (body or "").strip():
        raise ValidationError({"body": ["A runbook needs a body."]})
    author = _user(author)
    with transaction.atomic():
        runbook = Runbook.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=runbook.pk)
        current = runbook.current_version
        if current is not None and current.body == body:
            return current
        number = (runbook.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        now = timezone.now()
        version = RunbookVersion.objects.create(
            runbook=runbook, number=number, body=body, change_note=(change_note or "").strip()[:300],
            author=author, created_at=now,
        )  # fmt: skip
        # writing a version is a review by its author
        runbook.current_version = version
        runbook.reviewed_at = now
        runbook.reviewed_by = author
        runbook.save(update_fields=["current_version", "reviewed_at", "reviewed_by"])
    return version


def runbook_mark_reviewed(*, runbook: Runbook, actor: AbstractBaseUser | None) -> Runbook:
    """Someone read the runbook and confirms it is still right: it is no longer stale for age."""
    with transaction.atomic():
        runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
        runbook.reviewed_at = timezone.now()
        runbook.reviewed_by = _user(actor)
        runbook.save(update_fields=["reviewed_at", "reviewed_by"])
    return runbook


def incident_attach_runbooks(*, incident: Incident) -> list[IncidentRunbook]:
    """Record which runbook versions responders are shown for the incident. Safe to run twice: a runbook
    already attached keeps the version first shown."""
    links = []
    now = timezone.now()
    for match in selectors.runbooks_matching(incident=incident):
        if match.runbook.current_version_id is None:
            continue
        try:
            with transaction.atomic():
                link, _ = IncidentRunbook.objects.get_or_create(
                    incident=incident,
                    runbook=match.runbook,
                    defaults={
                        "version_id": match.runbook.current_version_id,
                        "matched_by": match.matched_by,
                        "attached_at": now,
                    },
                )
        except IntegrityError:  # attached concurrently by another worker
            link = IncidentRunbook.objects.get(incident=incident, runbook=match.runbook)
        links.append(link)
    return links


def runbook_update(
    *, runbook: Runbook, title: str, alert_name: str = "", source_url: str = "", service: Service | None = None
) -> Runbook:
    """Change what a runbook answers (title, alert name, runbook URL, service); the body is versioned apart."""
    if not (title or "").strip():
        raise ValidationError({"title": ["A runbook needs a title."]})
    with transaction.atomic():
        runbook = Runbook.objects.select_for_update(of=("self",)).get(pk=runbook.pk)
        runbook.title = title.strip()
        runbook.alert_name = (alert_name or "").strip()
        runbook.source_url = (source_url or "").strip()
        if service is not None:
            runbook.service = service
        runbook.save(update_fields=["title", "alert_name", "source_url", "service"])
    return runbook
