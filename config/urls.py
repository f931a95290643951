from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health

admin.site.site_header = "Firebreak"
admin.site.site_title = "Firebreak"
admin.site.index_title = "Incidents, on-call and postmortems"

api_v1 = [
    path("", include("oncall.urls")),
    path("", include("incidents.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("hooks/", include("incidents.alerting.urls")),
]
