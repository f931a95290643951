from rest_framework.routers import DefaultRouter

from incidents import api
from incidents.alerting import api as alerting_api

router = DefaultRouter()
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("services", api.ServiceViewSet, basename="service")
router.register("severities", api.SeverityPolicyViewSet, basename="severity")
router.register("alerts", alerting_api.AlertViewSet, basename="alert")
router.register("integrations", alerting_api.IntegrationViewSet, basename="integration")

urlpatterns = router.urls
