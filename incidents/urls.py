from django.urls import path
from rest_framework.routers import DefaultRouter

from incidents import api, response_api
from incidents.alerting import api as alerting_api

router = DefaultRouter()
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("services", api.ServiceViewSet, basename="service")
router.register("severities", api.SeverityPolicyViewSet, basename="severity")
router.register("alerts", alerting_api.AlertViewSet, basename="alert")
router.register("integrations", alerting_api.IntegrationViewSet, basename="integration")
router.register("subscriptions", response_api.SubscriptionViewSet, basename="subscription")

urlpatterns = router.urls

# Response features (runbooks shown, automated actions, stale runbooks)
urlpatterns += [
    path("incidents/<str:ref>/runbooks/", response_api.IncidentRunbooksView.as_view(), name="incident-runbooks"),
    path("incidents/<str:ref>/automation/", response_api.IncidentAutomationView.as_view(), name="incident-automation"),
    path("runbooks/stale/", response_api.StaleRunbooksView.as_view(), name="runbooks-stale"),
]
