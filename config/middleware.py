"""Turn a lost database into a clean 503 instead of a 500."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """A request that fails because PostgreSQL is unreachable (restarting, failing over) answers 503 with
    Retry-After: nothing was written (each write is one transaction), and senders such as Alertmanager retry.
    Connections are health-checked (CONN_HEALTH_CHECKS), so the process recovers on its own when the
    database is back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
            response = JsonResponse(
                {"code": "database_unavailable", "detail": "The database is unavailable; retry shortly.", "errors": {}},
                status=503,
            )
            response["Retry-After"] = "5"
            return response
        return None
