from django.urls import path
from rest_framework.routers import DefaultRouter

from oncall import api

router = DefaultRouter()
router.register("teams", api.TeamViewSet, basename="team")
router.register("rotations", api.RotationViewSet, basename="rotation")
router.register("shifts", api.ShiftViewSet, basename="shift")
router.register("overrides", api.OverrideViewSet, basename="override")
router.register("swaps", api.SwapViewSet, basename="swap")
router.register("unavailability", api.UnavailabilityViewSet, basename="unavailability")
router.register("escalation-policies", api.EscalationPolicyViewSet, basename="escalation-policy")

urlpatterns = [
    path("oncall/", api.OnCallView.as_view(), name="oncall-now"),
    path("calendar-feed/", api.CalendarFeedView.as_view(), name="calendar-feed"),
    *router.urls,
]
