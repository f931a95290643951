from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health, login
from incidents.ack import acknowledge_from_page
from metrics.admin import dashboard
from metrics.exposition import prometheus_metrics

admin.site.site_header = "Firebreak"
admin.site.site_title = "Firebreak"
admin.site.index_title = "Incidents, on-call and postmortems"

api_v1 = [
    path("", include("oncall.urls")),
    path("", include("incidents.urls")),
    path("", include("metrics.urls")),
    path("", include("postmortems.urls")),
]

urlpatterns = [
    path("admin/login/", login.admin_login, name="admin-login"),
    path("admin/metrics/dashboard/", admin.site.admin_view(dashboard), name="metrics-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves Swagger UI's initialiser as a script file, so the CSP needs no inline script; a page
    # for people, so an anonymous visitor is sent to the login page (the schema, read by tools, answers 403)
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="schema"), login_url="admin:login"),
        name="swagger-ui",
    ),
    path("ical/", include("oncall.feed_urls")),
    path("ack/<str:token>/", acknowledge_from_page, name="incident-ack"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", prometheus_metrics, name="prometheus-metrics"),
    path("hooks/", include("incidents.alerting.urls")),
    path("chatops/", include("incidents.chatops.urls")),
]
