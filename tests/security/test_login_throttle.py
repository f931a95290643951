"""Admin login: failures per address and username are limited; a success is possible after the window."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from tests.oncall.factories import UserFactory

LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _clean_cache(settings, db):
    settings.FIREBREAK_LOGIN_MAX_FAILURES = 3
    settings.FIREBREAK_LOGIN_WINDOW_SECONDS = 600
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(db):
    user = UserFactory(username="staffer", groups=["Managers"], is_staff=True)
    user.set_password("right-horse-battery")
    user.save()
    return user


def _post(client, username, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_locks_after_failures_and_recovers_after_window(client, staff):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            response = _post(client, "staffer", "wrong")
            assert response.status_code == 200  # the form again, with the usual error
        locked = _post(client, "staffer", "right-horse-battery")
        assert locked.status_code == 429
        assert locked["Retry-After"] == "600"
        assert "Too many failed attempts" in locked.content.decode()
        assert "_auth_user_id" not in client.session  # the right password did not get in while locked
    with time_machine.travel(start + timedelta(seconds=601), tick=False):
        response = _post(client, "staffer", "right-horse-battery")
        assert response.status_code == 302
        assert client.session["_auth_user_id"] == str(staff.pk)


def test_lock_is_per_address_and_username(client, staff):
    for _ in range(3):
        _post(client, "staffer", "wrong", address="10.0.0.1")
    assert _post(client, "staffer", "wrong", address="10.0.0.1").status_code == 429
    assert _post(client, "STAFFER", "wrong", address="10.0.0.1").status_code == 429  # case does not reset it
    assert _post(client, "someone-else", "wrong", address="10.0.0.1").status_code == 200
    response = _post(client, "staffer", "right-horse-battery", address="10.0.0.2")
    assert response.status_code == 302


def test_success_clears_failures(client, staff):
    for _ in range(2):
        _post(client, "staffer", "wrong")
    assert _post(client, "staffer", "right-horse-battery").status_code == 302
    client.logout()
    for _ in range(2):
        assert _post(client, "staffer", "wrong").status_code == 200
    assert _post(client, "staffer", "right-horse-battery").status_code == 302


def test_get_login_page_is_not_counted(client, staff):
    for _ in range(10):
        assert client.get(LOGIN).status_code == 200
    assert _post(client, "staffer", "right-horse-battery").status_code == 302


def test_counters_live_in_the_shared_database_cache(staff, client):
    from django.conf import settings
    from django.db import connection

    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    _post(client, "staffer", "wrong")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM firebreak_cache WHERE cache_key LIKE %s", ["%login-failures:%"])
        assert cursor.fetchone()[0] == 1
