"""Webhook receivers, mounted at /hooks/ by config/urls.py."""

from django.urls import path

from incidents.alerting import receivers

urlpatterns = [
    path("alertmanager/<str:key>/", receivers.alertmanager_webhook, name="hook-alertmanager"),
    path("generic/<str:key>/", receivers.generic_webhook, name="hook-generic"),
    path("pagerduty/v2/enqueue", receivers.pagerduty_v2_enqueue, name="hook-pagerduty-v2"),
    path("pagerduty/v2/enqueue/", receivers.pagerduty_v2_enqueue),
]
