"""The two groups of DESIGN.md and what each may do.

Each app declares its grants in `AppConfig.ready()` with `grant(...)`; after every migrate the groups are
brought in line with the declarations, so a model added later gets its permissions without a hand edit.
The groups themselves are created by migration (oncall 0002).
"""

from __future__ import annotations

MANAGERS = "Managers"
RESPONDERS = "Responders"

_grants: dict[str, set[tuple[str, str]]] = {MANAGERS: set(), RESPONDERS: set()}


def is_manager(user) -> bool:
    """A member of Managers (or a superuser): the people docs/security.md lets do what responders may not."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=MANAGERS).exists()


def grant(group: str, app_label: str, *codenames: str) -> None:
    """Give `group` the permissions `codenames` of `app_label`; "*" means every permission of the app."""
    for codename in codenames:
        _grants[group].add((app_label, codename))


def sync_group_permissions(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for group_name, wanted in _grants.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = []
        for app_label, codename in sorted(wanted):
            queryset = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                queryset = queryset.filter(codename=codename)
            permissions.extend(queryset)
        group.permissions.set(permissions)
