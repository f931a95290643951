from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.models import IncidentRunbook, Runbook
from incidents.response import incident_response_prepare
from incidents.runbooks import services as runbook_services
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.incidents.response_helpers import active_html


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def test_admin_add_runbook_writes_version_one(manager_client, manager, service):
    response = manager_client.post(
        reverse("admin:incidents_runbook_add"),
        {
            "service": service.pk,
            "title": "Database failover",
            "slug": "",
            "alert_name": "PostgresDown",
            "source_url": "",
            "body": "1. Promote the replica",
            "change_note": "first",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    runbook = Runbook.objects.get()
    assert runbook.current_version.number == 1
    assert runbook.current_version.author == manager


def test_admin_edit_adds_a_version_and_the_diff_page_shows_it(manager_client, manager, service):
    runbook = runbook_services.runbook_create(
        service=service, title="Failover", body="step one\nstep two", author=manager
    )
    response = manager_client.post(
        reverse("admin:incidents_runbook_change", args=[runbook.pk]),
        {
            "service": service.pk,
            "title": "Failover",
            "slug": runbook.slug,
            "alert_name": "",
            "source_url": "",
            "body": "step one\nstep 2 <script>x</script>",
            "change_note": "clearer",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": runbook.current_version.pk,
            "versions-0-runbook": runbook.pk,
        },
    )
    assert response.status_code == 302
    assert list(runbook.versions.order_by("number").values_list("number", flat=True)) == [1, 2]

    diff = manager_client.get(reverse("admin:incidents_runbook_diff", args=[runbook.pk]) + "?a=1&b=2")

    assert diff.status_code == 200
    content = diff.content.decode()
    assert 'class="diff"' in content
    assert "&lt;script&gt;" in content
    assert "<script>x" not in content


def test_change_page_preview_is_sanitised(manager_client, manager, service):
    runbook = runbook_services.runbook_create(
        service=service,
        title="Bad",
        body="<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n[x](javascript:alert(1))",
        author=manager,
    )
    response = manager_client.get(reverse("admin:incidents_runbook_change", args=[runbook.pk]))

    assert response.status_code == 200
    preview = response.content.decode().split("Current version", 1)[1]
    assert "<script>alert" not in preview
    assert active_html(preview.split('<div class="form-row field-reviewed_at', 1)[0]) == []


def test_runbook_changelist_flags_stale_with_constant_queries(manager_client, manager, django_assert_max_num_queries):
    def make(count):
        for _index in range(count):
            runbook_services.runbook_create(
                service=ServiceFactory(), title=f"Runbook {Runbook.objects.count()}", body="b", author=manager
            )

    with time_machine.travel(timezone.now() - timedelta(days=100), tick=False):
        make(3)
    with django_assert_max_num_queries(12):
        small = manager_client.get(reverse("admin:incidents_runbook_changelist"))
    make(20)
    with django_assert_max_num_queries(12):
        large = manager_client.get(reverse("admin:incidents_runbook_changelist"))
    assert small.status_code == large.status_code == 200
    assert large.content.decode().count(">stale</span>") == 3


def test_incident_page_and_api_show_the_runbook_version_seen(manager_client, manager, manager_api, service):
    runbook = runbook_services.runbook_create(
        service=service, title="General steps", body="# Look at it", author=manager
    )
    incident = IncidentFactory(service=service)
    incident_response_prepare(incident_id=incident.pk)
    runbook_services.runbook_edit(runbook=runbook, body="# Newer", change_note="n", author=manager)

    page = manager_client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).content.decode()
    api = manager_api.get(f"/api/v1/incidents/{incident.ref}/runbooks/")

    assert "General steps" in page
    assert "v1 (now v2)" in page
    assert "<h1>Look at it</h1>" in page
    assert api.status_code == 200
    assert api.json() == [
        {
            "runbook": runbook.pk,
            "title": "General steps",
            "version": 1,
            "current_version": 2,
            "matched_by": "service",
            "attached_at": IncidentRunbook.objects.get().attached_at.isoformat().replace("+00:00", "Z"),
            "html": "<h1>Look at it</h1>\n",
        }
    ]


def test_stale_runbooks_api(manager_api, manager, service):
    with time_machine.travel(timezone.now() - timedelta(days=100), tick=False):
        runbook_services.runbook_create(service=service, title="Old", body="b", author=manager)

    response = manager_api.get("/api/v1/runbooks/stale/")

    assert response.status_code == 200
    assert [row["title"] for row in response.json()] == ["Old"]


def test_admin_add_runbook_whose_generated_slug_exists_shows_the_field_not_a_500(manager_client, manager, service):
    runbook_services.runbook_create(service=service, title="Database failover", body="1. Promote", author=manager)
    data = {
        "service": service.pk,
        "title": "Database failover",
        "slug": "",  # generated from the service and title: taken
        "alert_name": "",
        "source_url": "",
        "body": "Second copy",
        "change_note": "",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    response = manager_client.post(reverse("admin:incidents_runbook_add"), data)
    assert response.status_code == 200
    assert "exists" in response.context["adminform"].form.errors["slug"][0]
    assert "Second copy" in response.content.decode()  # the input is kept
    assert Runbook.objects.count() == 1
