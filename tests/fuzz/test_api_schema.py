"""schemathesis against /api/schema/: every operation, authenticated as a manager with an API token.

No response may be a server error, and every response must match the schema (status code documented,
content type, body). The total number of generated cases is counted and must pass 1,000.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from incidents.alerting import services as alerting_services  # noqa: E402
from tests.incidents.factories import IncidentFactory, ServiceFactory  # noqa: E402
from tests.oncall.factories import RotationFactory  # noqa: E402

EXAMPLES_PER_OPERATION = 20
MINIMUM_CASES = 1000
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
def test_every_operation_conforms_and_never_errors(manager, same_connection):
    token = Token.objects.create(user=manager)
    auth = {"Authorization": f"Token {token.key}"}
    service = ServiceFactory(slug="checkout")
    IncidentFactory(service=service, ref="INC-2026-1")
    alerting_services.integration_create(service=service, kind="generic", name="fuzz")
    RotationFactory()

    schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), headers=auth)
    counts: dict[str, int] = {}
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        _fuzz(operation, auth, counts, failures)

    total = sum(counts.values())
    print(f"schemathesis: {total} cases over {len(counts)} operations")  # noqa: T201
    assert failures == [], "\n\n".join(failures[:20])
    assert len(counts) >= 40
    assert total >= MINIMUM_CASES


def _fuzz(operation, auth: dict, counts: dict[str, int], failures: list[str]) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    counts[label] = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        counts[label] += 1
        response = case.call(headers=auth)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure, report them together
            failures.append(f"{label}: {str(exc)[:600]}")

    run()
