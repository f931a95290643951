from django.urls import path

from metrics import api

urlpatterns = [
    path("metrics/monthly/", api.MonthlyMetricsView.as_view(), name="metrics-monthly"),
    path("metrics/trend/", api.TrendView.as_view(), name="metrics-trend"),
]
