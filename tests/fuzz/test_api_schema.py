"""schemathesis against /api/schema/ on a database that looks like production: every operation, as the demo
manager and as the demo responder, each with an API token.

The data is seed_demo's (incidents in every state, rotations with gaps, postmortems in every workflow state,
action items with and without owner, runbook, game day or tracker link) plus alerts, an integration, an
override, a swap, an unavailability and a subscription (tests/security/api_world.py). Fuzzing an almost empty
database proved nothing about response schemas: the same checks on seeded data found 50 failures (nullable
fields declared as non-null strings, a blank tracker URL declared a URI, a 500 on `?start=null`).

No response may be a server error, and every response must match the schema (status code documented, content
type, body). Half the cases of an operation with path parameters use the id of a seeded row, so detail
endpoints answer with real data rather than 404. The total number of generated cases is counted and must pass
the minimum.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.api_world import seed_api_world  # noqa: E402

# cases per operation for each user: the manager reaches every write, the responder sees what it may not do
EXAMPLES = {"manager": 16, "responder": 8}
MINIMUM_CASES = 1800
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def same_connection():
    """The WSGI app runs in this thread, inside the test's transaction: keep Django from closing it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.fuzz
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_operation_conforms_and_never_errors(same_connection, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # seed_demo writes its logins file under BASE_DIR/var
    world = seed_api_world()
    users = get_user_model().objects.in_bulk(["manager", "responder"], field_name="username")

    counts: dict[str, int] = {}
    failures: list[str] = []
    for username in ("responder", "manager"):  # the manager last: its writes change what the responder sees
        token = Token.objects.create(user=users[username])
        auth = {"Authorization": f"Token {token.key}"}
        schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), headers=auth)
        for result in schema.get_all_operations():
            _fuzz(result.ok(), username, auth, world, counts, failures)

    total = sum(counts.values())
    print(f"schemathesis: {total} cases over {len(counts)} operation × user pairs, {len(failures)} failures")  # noqa: T201
    assert failures == [], "\n\n".join(failures[:20])
    assert len(counts) >= 2 * 80
    assert total >= MINIMUM_CASES


def _path_value(path: str, name: str, world: dict) -> object:
    if name == "username":
        return world["username"]
    return world.get(path.removeprefix("/api/v1/").split("/")[0])


def _fuzz(operation, username: str, auth: dict, world: dict, counts: dict[str, int], failures: list[str]) -> None:
    label = f"{username} {operation.method.upper()} {operation.path}"
    counts[label] = 0

    @settings(
        max_examples=EXAMPLES[username],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), seeded=st.booleans())
    def run(case, seeded):
        counts[label] += 1
        if seeded and case.path_parameters:
            for name in case.path_parameters:
                value = _path_value(operation.path, name, world)
                if value is not None:
                    case.path_parameters[name] = value
        response = case.call(headers=auth)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure, report them together
            failures.append(f"{label}: {str(exc)[:600]}")

    run()
