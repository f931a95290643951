"""The ingestion baseline: the least a Django view can do to store a posted alert (parse JSON, INSERT one row).

Same server, same middleware, same database as the Alertmanager receiver; no key, no routing, no dedup.
The table `bench_baseline` is created by bench/ingest.py (raw SQL, not a model: no migration)."""

import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def baseline_insert(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_baseline (body, received_at) VALUES (%s, now())", [json.dumps(data)])
    return JsonResponse({"status": "success"})
