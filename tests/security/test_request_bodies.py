"""Every unsafe API route (from the URL resolver) fed malformed bodies: 400, and the database unchanged.

The rule (config.api.StrictBodyMixin, README "API"): the body of a POST, PUT, PATCH or DELETE is parsed before
the view acts; it must be empty or a JSON object; an action that takes no body (acknowledge, regenerate-key,
calendar-feed, …, and every DELETE) accepts only an empty body or `{}`.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from tests.oncall.factories import UserFactory
from tests.security.api_world import seed_api_world
from tests.security.routes import api_routes

MALFORMED = [b'{"title": "x", ', b"{", b"[]", b'[{"title": "x"}]', b'"a string"', b"null", b"42", b"\xff\xfe"]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>")
SNAPSHOT_APPS = ("incidents", "oncall", "postmortems", "metrics", "authtoken", "auth")


@pytest.fixture
def world(db, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # seed_demo writes its logins file under BASE_DIR/var
    return seed_api_world()


@pytest.fixture
def superuser_client(client, db):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def _url(pattern: str, world: dict) -> str:
    resource = pattern.removeprefix("api/v1/").lstrip("^").split("/")[0]

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return str(world["username"] if name == "username" else world[resource])

    return "/" + _PARAM.sub(value, pattern).replace("^", "").replace("$", "")


def _snapshot() -> dict[str, list[dict]]:
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for app in SNAPSHOT_APPS
        for model in apps.get_app_config(app).get_models()
    }


def _unsafe_routes(world) -> list[tuple[str, str]]:
    found = [(method, _url(route.pattern, world)) for route in api_routes() for method in route.methods]
    return [(method, url) for method, url in found if method in UNSAFE]


def test_every_unsafe_route_refuses_a_malformed_body_and_changes_nothing(superuser_client, world):
    routes = _unsafe_routes(world)
    assert len(routes) >= 35
    before = _snapshot()
    wrong = []
    for method, url in routes:
        for body in MALFORMED:
            response = superuser_client.generic(method, url, data=body, content_type="application/json")
            if response.status_code != 400 or response.json()["code"] not in {"parse_error", "invalid"}:
                wrong.append(f"{method} {url} {body[:20]!r}: {response.status_code} {response.content[:120]!r}")
        after = _snapshot()
        changed = [label for label in before if before[label] != after[label]]
        if changed:
            wrong.append(f"{method} {url} changed {changed}")
            before = after
    assert wrong == [], "\n".join(wrong)


NO_BODY = [
    ("POST", "/api/v1/incidents/{incidents}/acknowledge/"),
    ("POST", "/api/v1/incidents/{incidents}/mitigate/"),
    ("POST", "/api/v1/integrations/{integrations}/regenerate-key/"),
    ("POST", "/api/v1/calendar-feed/"),
    ("POST", "/api/v1/swaps/{swaps}/decline/"),
    ("POST", "/api/v1/postmortems/{postmortems}/submit/"),
    ("DELETE", "/api/v1/overrides/{overrides}/"),
    ("DELETE", "/api/v1/subscriptions/{subscriptions}/"),
]


@pytest.mark.parametrize(("method", "template"), NO_BODY)
def test_an_action_without_a_body_refuses_a_non_empty_object(superuser_client, world, method, template):
    url = template.format(**world)
    before = _snapshot()
    response = superuser_client.generic(method, url, data=b'{"title": "x"}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "This action takes no body: send none, or an empty JSON object {}."
    assert _snapshot() == before


@pytest.mark.parametrize("body", [b"", b"{}", b" { } "])
def test_acknowledge_accepts_no_body_or_an_empty_object(superuser_client, world, body):
    from incidents.models import Incident

    url = f"/api/v1/incidents/{world['incidents']}/acknowledge/"
    response = superuser_client.post(url, data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert Incident.objects.get(ref=world["incidents"]).status == Incident.Status.ACKNOWLEDGED


def test_a_body_taking_action_refuses_an_array_naming_no_field(superuser_client, world):
    url = f"/api/v1/incidents/{world['incidents']}/notes/"
    response = superuser_client.post(url, data=b'[{"message": "x"}]', content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "Send a JSON object as the body.",
        "errors": {"non_field_errors": ["Send a JSON object as the body."]},
    }


def test_a_wrong_method_is_still_405_whatever_the_body(superuser_client, world):
    response = superuser_client.post("/api/v1/teams/", data=b"{", content_type="application/json")
    assert response.status_code == 405


def test_every_api_view_parses_bodies_first():
    from config.api import StrictBodyMixin

    views = {getattr(route.callback, "cls", None) for route in api_routes()}
    views.discard(None)
    ours = {
        view for view in views if view.__module__.split(".")[0] in {"incidents", "oncall", "postmortems", "metrics"}
    }
    assert len(ours) >= 20
    assert [view.__name__ for view in ours if not issubclass(view, StrictBodyMixin)] == []
