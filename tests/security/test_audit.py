"""Audit trail: admin changes to policies, rotations, integrations and permissions are logged with
who, what (old → new values) and when, in Django's LogEntry; the log is read-only and for managers."""

import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission

from incidents.alerting import services as alerting_services
from incidents.models import Integration, SeverityPolicy
from oncall.audit import change_values
from tests.incidents.factories import ServiceFactory
from tests.oncall.factories import RotationFactory, UserFactory
from tests.security.admin_forms import change_form_data


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def _last_entry(model) -> LogEntry:
    return LogEntry.objects.filter(content_type__model=model._meta.model_name).latest("action_time", "id")


def _save_change_form(client, url, **changes):
    page = client.get(url)
    assert page.status_code == 200
    data = change_form_data(page)
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    return response


def test_severity_policy_change_is_logged_with_old_and_new_values(manager_client, manager):
    policy = SeverityPolicy.objects.get(severity="P1")
    old_name = policy.name
    _save_change_form(manager_client, f"/admin/incidents/severitypolicy/{policy.pk}/change/", name="Core broken")
    entry = _last_entry(SeverityPolicy)
    assert entry.user == manager
    assert entry.action_flag == CHANGE
    assert entry.object_id == str(policy.pk)
    assert f"name: {old_name} → Core broken" in change_values(entry)


def test_group_permission_change_is_logged_as_added_and_removed(manager_client):
    group = Group.objects.get(name="Responders")
    permission = Permission.objects.get(codename="change_severitypolicy")
    url = f"/admin/auth/group/{group.pk}/change/"
    page = manager_client.get(url)
    data = change_form_data(page)
    data["permissions"] = [*data.get("permissions", []), str(permission.pk)]
    assert manager_client.post(url, data).status_code == 302
    values = json.loads(_last_entry(Group).change_message)[0]["changed"]["values"]
    assert values["permissions"]["added"] == [str(permission)]
    assert values["permissions"]["removed"] == []


def test_integration_change_and_key_regeneration_are_logged_without_the_key(manager_client):
    integration, key = alerting_services.integration_create(
        service=ServiceFactory(), kind=Integration.Kind.GENERIC, name="edge"
    )
    url = f"/admin/incidents/integration/{integration.pk}/change/"
    _save_change_form(manager_client, url, rate_limit_per_minute="120")
    assert "rate_limit_per_minute: 600 → 120" in change_values(_last_entry(Integration))

    response = manager_client.post(
        "/admin/incidents/integration/", {"action": "regenerate_keys", "_selected_action": [integration.pk]}
    )
    assert response.status_code == 302
    entry = _last_entry(Integration)
    assert change_values(entry) == ["key regenerated"]
    integration.refresh_from_db()
    assert key not in entry.change_message
    assert integration.key_digest not in entry.change_message


def test_rotation_change_is_logged(manager_client, manager):
    rotation = RotationFactory()
    url = f"/admin/oncall/rotation/{rotation.pk}/change/"
    _save_change_form(manager_client, url, name="Renamed rotation")
    entry = _last_entry(type(rotation))
    assert entry.user == manager
    assert any(line.startswith("name: ") and line.endswith("→ Renamed rotation") for line in change_values(entry))


def test_audit_log_is_read_only_and_for_managers(client, manager, responder):
    entry = LogEntry.objects.create(
        user=manager, content_type_id=1, object_id="1", object_repr="x", action_flag=CHANGE, change_message="[]"
    )
    client.force_login(manager)
    assert client.get("/admin/admin/logentry/").status_code == 200
    assert client.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/admin/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/admin/logentry/add/").status_code == 403
    client.force_login(UserFactory(username="plain", is_staff=True))
    assert client.get("/admin/admin/logentry/").status_code == 403
    client.force_login(responder)
    assert client.get("/admin/admin/logentry/").status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()
