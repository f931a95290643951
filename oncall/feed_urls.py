"""iCal feed routes, included by config/urls.py under /ical/ (outside the authenticated API)."""

from django.urls import path

from oncall import views

app_name = "oncall-feeds"

urlpatterns = [
    path("rotations/<str:token>.ics", views.rotation_ical, name="rotation"),
    path("people/<str:token>.ics", views.person_ical, name="person"),
]
