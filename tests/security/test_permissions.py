"""Permission matrix: every API endpoint (listed from the URL resolver) and the main admin views, for an
anonymous visitor, a signed-in user in no group, a responder and a manager.

Codes for detail routes use an id that does not exist: the permission check runs first, so 403 means
refused and 404 (or 400 for an empty body) means the request got past the permission layer. A new
endpoint without a row here fails `test_every_api_route_is_in_the_matrix`.
"""

import pytest

from incidents.models import SeverityPolicy
from tests.incidents.factories import IncidentFactory, ServiceFactory
from tests.oncall.factories import UserFactory
from tests.security.routes import all_routes, api_routes

ROLES = ("anonymous", "no_group", "responder", "manager")

# pattern -> method -> expected status for (anonymous, no group, responder, manager)
API_MATRIX: dict[str, dict[str, tuple[int, int, int, int]]] = {
    r"api/v1/oncall/": {"GET": (403, 200, 200, 200)},
    r"api/v1/calendar-feed/": {"GET": (403, 200, 200, 200), "POST": (403, 200, 200, 200)},
    r"api/v1/^teams/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^teams/(?P<slug>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^rotations/$": {"GET": (403, 200, 200, 200), "POST": (403, 403, 403, 400)},
    r"api/v1/^rotations/(?P<pk>[^/.]+)/$": {
        "DELETE": (403, 403, 403, 404),
        "GET": (403, 404, 404, 404),
        "PATCH": (403, 403, 403, 404),
        "PUT": (403, 403, 403, 404),
    },
    r"api/v1/^rotations/(?P<pk>[^/.]+)/members/$": {"POST": (403, 403, 403, 404)},
    r"api/v1/^rotations/(?P<pk>[^/.]+)/fairness/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^rotations/(?P<pk>[^/.]+)/members/(?P<username>[^/]+)/$": {"DELETE": (403, 403, 403, 404)},
    r"api/v1/^rotations/(?P<pk>[^/.]+)/reorder-members/$": {"POST": (403, 403, 403, 404)},
    r"api/v1/^shifts/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^shifts/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    # members take shifts for themselves: who for and which rotation are checked after the body (tests/oncall)
    r"api/v1/^overrides/$": {"GET": (403, 200, 200, 200), "POST": (403, 400, 400, 400)},
    r"api/v1/^overrides/(?P<pk>[^/.]+)/$": {"DELETE": (403, 404, 404, 404), "GET": (403, 404, 404, 404)},
    r"api/v1/^swaps/$": {"GET": (403, 200, 200, 200), "POST": (403, 400, 400, 400)},
    r"api/v1/^swaps/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^swaps/(?P<pk>[^/.]+)/accept/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^swaps/(?P<pk>[^/.]+)/decline/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^unavailability/$": {"GET": (403, 200, 200, 200), "POST": (403, 400, 400, 400)},
    r"api/v1/^unavailability/(?P<pk>[^/.]+)/$": {"DELETE": (403, 404, 404, 404), "GET": (403, 404, 404, 404)},
    r"api/v1/^escalation-policies/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^escalation-policies/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/": {"GET": (403, 200, 200, 200)},
    r"api/v1/^incidents/$": {"GET": (403, 200, 200, 200), "POST": (403, 403, 400, 400)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/$": {"GET": (403, 404, 404, 404), "PATCH": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/acknowledge/$": {"POST": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/cancel/$": {"POST": (403, 403, 400, 400)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/close/$": {"POST": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/mitigate/$": {"POST": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/notes/$": {"POST": (403, 403, 400, 400)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/reopen/$": {"POST": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/resolve/$": {"POST": (403, 403, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/roles/$": {"POST": (403, 403, 400, 400)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/timeline/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^incidents/(?P<ref>[^/]+)/times/$": {"POST": (403, 403, 403, 400)},  # managers correct times
    r"api/v1/^incidents/(?P<ref>[^/]+)/updates/$": {"GET": (403, 404, 404, 404), "POST": (403, 403, 404, 404)},
    r"api/v1/^services/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^services/(?P<slug>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^severities/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^severities/(?P<severity>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^alerts/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^alerts/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^integrations/$": {"GET": (403, 200, 200, 200), "POST": (403, 403, 403, 400)},
    r"api/v1/^integrations/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^integrations/(?P<pk>[^/.]+)/regenerate-key/$": {"POST": (403, 403, 403, 404)},
    r"api/v1/metrics/monthly/": {"GET": (403, 200, 200, 200)},
    r"api/v1/metrics/trend/": {"GET": (403, 200, 200, 200)},
    r"api/v1/^postmortems/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404), "PATCH": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/action-items/$": {"POST": (403, 400, 400, 400)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/amend/$": {"POST": (403, 400, 400, 400)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/approve/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/factors/$": {"POST": (403, 400, 400, 400)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/publish/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/request-changes/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/revisions/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/revisions/(?P<number>[0-9]+)/$": {"GET": (403, 404, 404, 404)},
    r"api/v1/^postmortems/(?P<pk>[^/.]+)/submit/$": {"POST": (403, 404, 404, 404)},
    r"api/v1/^action-items/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^action-items/export/$": {"GET": (403, 200, 200, 200)},
    r"api/v1/^action-items/(?P<pk>[^/.]+)/$": {"GET": (403, 404, 404, 404), "PATCH": (403, 404, 404, 404)},
    r"api/v1/^subscriptions/$": {"GET": (403, 200, 200, 200), "POST": (403, 400, 400, 400)},
    r"api/v1/^subscriptions/(?P<pk>[^/.]+)/$": {"DELETE": (403, 404, 404, 404)},
    r"api/v1/incidents/<str:ref>/runbooks/": {"GET": (403, 404, 404, 404)},
    r"api/v1/incidents/<str:ref>/automation/": {"GET": (403, 404, 404, 404), "POST": (403, 403, 400, 400)},
    r"api/v1/runbooks/stale/": {"GET": (403, 200, 200, 200)},
    r"api/schema/": {"GET": (403, 200, 200, 200)},
    r"api/docs/": {"GET": (302, 200, 200, 200)},  # Swagger UI: anonymous visitors go to the login page
}

# Non-API routes that are open by design: probes, webhook receivers (authenticated by the integration
# key), iCal feeds (an unguessable token) and Prometheus /metrics (a bearer token; off when unset).
OPEN_ROUTES = {
    "healthz": 200,
    "readyz": None,  # 200 or 503 depending on the broker
    "metrics": 404,
    "hooks/alertmanager/<str:key>/": 405,  # GET; POST with a wrong key is 404 (tests/fuzz)
    "hooks/generic/<str:key>/": 405,
    "hooks/pagerduty/v2/enqueue": 405,
    "hooks/pagerduty/v2/enqueue/": 405,
    "ical/rotations/<str:token>.ics": 404,
    "ical/people/<str:token>.ics": 404,
    "ack/<str:token>/": 404,  # a signed, expiring token is the credential; a bad one is 404
    "chatops/slack/commands/": 405,  # GET; a POST needs Slack's signature (401 without it)
}

# Admin pages a visitor must reach before signing in.
ADMIN_PUBLIC = {"admin/login/": 200, "admin/logout/": 302}

# Main admin views: (method, url builder) -> expected for (anonymous, no group, responder, manager).
# Anonymous is sent to the login page (302); a user without the model permission gets 403.
ADMIN_MATRIX = {
    ("GET", "/admin/"): (302, 200, 200, 200),
    ("GET", "/admin/incidents/incident/"): (302, 403, 200, 200),
    ("GET", "/admin/incidents/incident/add/"): (302, 403, 200, 200),
    ("GET", "/admin/incidents/incident/{incident}/change/"): (302, 403, 200, 200),
    ("GET", "/admin/incidents/severitypolicy/"): (302, 403, 200, 200),
    ("POST", "/admin/incidents/severitypolicy/{policy}/change/"): (302, 403, 403, 200),
    ("GET", "/admin/incidents/integration/"): (302, 403, 403, 200),
    ("GET", "/admin/incidents/integration/add/"): (302, 403, 403, 200),
    ("GET", "/admin/incidents/service/add/"): (302, 403, 403, 200),
    ("GET", "/admin/oncall/rotation/"): (302, 403, 200, 200),
    ("GET", "/admin/oncall/rotation/add/"): (302, 403, 403, 200),
    ("GET", "/admin/oncall/override/add/"): (302, 403, 200, 200),
    ("GET", "/admin/oncall/escalationpolicy/add/"): (302, 403, 403, 200),
    ("GET", "/admin/oncall/team/add/"): (302, 403, 403, 200),
    ("GET", "/admin/auth/user/"): (302, 403, 403, 200),
    ("GET", "/admin/auth/group/"): (302, 403, 403, 200),
    ("GET", "/admin/authtoken/tokenproxy/"): (302, 403, 403, 200),
    ("GET", "/admin/django_celery_beat/periodictask/"): (302, 403, 403, 200),
    ("GET", "/admin/admin/logentry/"): (302, 403, 403, 200),
    # everyone signed in reads published postmortems (DESIGN.md); drafts only their editors
    ("GET", "/admin/postmortems/postmortem/"): (302, 200, 200, 200),
    ("GET", "/admin/postmortems/actionitem/"): (302, 403, 200, 200),
    ("GET", "/admin/metrics/dashboard/"): (302, 403, 403, 200),
    # people search for autocomplete fields (action-item owner, incident commander): responders too
    ("GET", "/admin/autocomplete/?app_label=postmortems&model_name=actionitem&field_name=owner"): (302, 403, 200, 200),
    ("GET", "/admin/autocomplete/?app_label=incidents&model_name=incident&field_name=commander"): (302, 403, 200, 200),
}


@pytest.fixture
def users(db):
    return {
        "anonymous": None,
        "no_group": UserFactory(username="nogroup", is_staff=True),
        "responder": UserFactory(username="responder", groups=["Responders"]),
        "manager": UserFactory(username="manager", groups=["Managers"]),
    }


def _request(client, user, method: str, url: str, data=None):
    client.logout()
    if user is not None:
        client.force_login(user)
    if method == "GET":
        return client.get(url)
    if url.startswith("/admin/"):
        return client.post(url, data or {})
    return client.generic(method, url, data="{}", content_type="application/json")


def test_every_api_route_is_in_the_matrix():
    missing = [(route.pattern, method) for route in api_routes() for method in route.methods
               if method not in API_MATRIX.get(route.pattern, {})]  # fmt: skip
    assert missing == [], f"add these endpoints to API_MATRIX: {missing}"
    stale = set(API_MATRIX) - {route.pattern for route in api_routes()}
    assert stale == set()


def test_every_other_route_is_admin_or_open_by_design():
    others = [r.pattern for r in all_routes() if not r.pattern.startswith(("api/", "admin/"))]
    assert sorted(others) == sorted(OPEN_ROUTES)


@pytest.mark.parametrize("route", api_routes(), ids=lambda route: route.pattern)
def test_api_permissions(client, users, route):
    for method in route.methods:
        expected = API_MATRIX[route.pattern][method]
        got = tuple(_request(client, users[role], method, route.url).status_code for role in ROLES)
        assert got == expected, f"{method} {route.url}: got {got}, expected {expected} for {ROLES}"


def test_anonymous_reads_nothing_but_the_open_routes(client, db):
    for route in all_routes():
        url = route.url
        response = client.get(url)
        if route.pattern in OPEN_ROUTES:
            expected = OPEN_ROUTES[route.pattern]
            assert expected is None or response.status_code == expected, url
        elif route.pattern in ADMIN_PUBLIC:
            assert response.status_code == ADMIN_PUBLIC[route.pattern], url
        elif route.pattern.startswith("admin/") or route.pattern == "api/docs/":
            assert response.status_code in {302, 404, 405}, url  # to the login page
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), url
        else:
            assert response.status_code in {401, 403}, url


def test_admin_permissions(client, users):
    service = ServiceFactory()
    objects = {
        "incident": IncidentFactory(service=service).pk,
        "policy": SeverityPolicy.objects.get(severity="P2").pk,
    }
    for (method, template), expected in ADMIN_MATRIX.items():
        url = template.format(**objects)
        got = tuple(_request(client, users[role], method, url).status_code for role in ROLES)
        assert got == expected, f"{method} {url}: got {got}, expected {expected} for {ROLES}"
