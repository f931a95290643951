from rest_framework.routers import DefaultRouter

from incidents import api

router = DefaultRouter()
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("services", api.ServiceViewSet, basename="service")
router.register("severities", api.SeverityPolicyViewSet, basename="severity")

urlpatterns = router.urls
