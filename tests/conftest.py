"""Shared fixtures. Factories live in tests/<app>/factories.py."""

import pytest

from config.celery import app as celery_app
from tests.oncall.factories import UserFactory

# Tasks published by tests (on-commit callbacks of transactional tests) stay in this process's memory
# instead of landing in the development broker under var/, where a later `make run` would consume them.
celery_app.conf.broker_url = "memory://"


@pytest.fixture(autouse=True)
def _publisher_resumed():
    """Messages are published by a background thread (oncall.queueing), which pauses after a failure: a test that
    makes the broker fail must not leave the next test's messages dropped."""
    from oncall.queueing import publisher

    publisher.resume()
    yield
    publisher.flush()
    publisher.resume()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user created; tests do not need it
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", groups=["Managers"])


@pytest.fixture
def responder(db):
    return UserFactory(username="responder", groups=["Responders"])


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def manager_api(api_client, manager):
    api_client.force_authenticate(manager)
    return api_client


@pytest.fixture
def responder_api(api_client, responder):
    api_client.force_authenticate(responder)
    return api_client


def queued_task_names(callbacks) -> list[str]:
    """Names of the Celery tasks that on-commit callbacks (captured with django_capture_on_commit_callbacks)
    would queue: `task.delay_on_commit` (a partial of `task.delay`) and `oncall.queueing.enqueue_on_commit`."""
    import functools

    names = []
    for callback in callbacks:
        candidates = []
        if isinstance(callback, functools.partial):
            candidates += [getattr(callback.func, "__self__", None), *callback.args]
        candidates += [cell.cell_contents for cell in (getattr(callback, "__closure__", None) or ())]
        names += [c.name for c in candidates if hasattr(c, "name") and hasattr(c, "apply_async")]
    return names


@pytest.fixture(autouse=True)
def _migration_data_in_transactional_tests(request):
    """What migrations and post_migrate create (groups with their permissions, severity policies), present in
    every transactional test too. A transactional test ends with a flush, and after one with
    serialized_rollback (the fuzz test) Django flushes without re-emitting post_migrate, so the next
    transactional test would start with no groups, no permissions and no severity policies."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))
    if not transactional or (marker and marker.kwargs.get("serialized_rollback")):
        return
    request.getfixturevalue("transactional_db")
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group
    from django.core.management.sql import emit_post_migrate_signal

    from incidents.models import SeverityPolicy

    if not Group.objects.exists():
        create_groups = importlib.import_module("oncall.migrations.0002_groups_and_btree_gist").create_groups
        create_groups(apps, None)
        emit_post_migrate_signal(0, False, "default")
    if not SeverityPolicy.objects.exists():
        importlib.import_module("incidents.migrations.0002_severity_policies").create_policies(apps, None)
