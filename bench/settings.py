"""Bench-only settings: the app's settings plus the baseline view's URL (bench/urls.py).

Used by the gunicorn server of the ingestion benchmark and by every bench script
(`DJANGO_SETTINGS_MODULE=bench.settings`). Nothing of the app imports this module.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# the benchmark server answers on 127.0.0.1 only, over plain HTTP
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
LOGGING["root"]["level"] = "WARNING"  # noqa: F405 — no per-request log lines in the measurements
