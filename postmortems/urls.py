from rest_framework.routers import DefaultRouter

from postmortems import api

router = DefaultRouter()
router.register("postmortems", api.PostmortemViewSet, basename="postmortem")
router.register("action-items", api.ActionItemViewSet, basename="actionitem")

urlpatterns = router.urls
