from django.contrib.auth.models import Group


def test_migration_creates_groups_with_permissions(db):
    managers = Group.objects.get(name="Managers")
    responders = Group.objects.get(name="Responders")
    manager_perms = set(managers.permissions.values_list("content_type__app_label", "codename"))
    responder_perms = set(responders.permissions.values_list("content_type__app_label", "codename"))
    assert ("incidents", "delete_incident") in manager_perms
    assert ("auth", "change_user") in manager_perms
    assert ("incidents", "change_incident") in responder_perms
    assert ("incidents", "delete_incident") not in responder_perms
    assert ("incidents", "change_severitypolicy") not in responder_perms
