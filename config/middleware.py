"""Turn a lost database into a clean 503 instead of a 500, and say so only when it is lost."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# SQLSTATE class 40, "transaction rollback": serialization_failure (40001), deadlock_detected (40P01), ...
# PostgreSQL is up; this request's transaction lost a race with another one and was rolled back.
TRANSACTION_ROLLBACK_CLASS = "40"


def _is_transaction_conflict(exception: BaseException) -> bool:
    cause = exception.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or ""
    return sqlstate.startswith(TRANSACTION_ROLLBACK_CLASS)


class DatabaseUnavailableMiddleware:
    """A request that fails because PostgreSQL is unreachable (restarting, failing over) answers 503 with
    Retry-After: nothing was written (each write is one transaction), and senders such as Alertmanager retry.
    Connections are health-checked (CONN_HEALTH_CHECKS), so the process recovers on its own when the
    database is back.

    A transaction PostgreSQL rolled back because it conflicted with a concurrent one (a deadlock or a
    serialization failure) is not an outage: it answers 503 `concurrent_change`, saying that nothing was saved
    and that the same request can be sent again. Services take their locks in one order so this stays rare."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if isinstance(exception, OperationalError) and _is_transaction_conflict(exception):
            logger.error("transaction conflict for %s %s: %s", request.method, request.path, exception)
            body = {
                "code": "concurrent_change",
                "detail": "This change ran into another change of the same records at the same moment, so "
                "nothing was saved. Send the request again.",
                "errors": {},
            }
            retry_after = "1"
        else:
            logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
            body = {
                "code": "database_unavailable",
                "detail": "The database is unavailable; retry shortly.",
                "errors": {},
            }
            retry_after = "5"
        response = JsonResponse(body, status=503)
        response["Retry-After"] = retry_after
        return response
