"""The app's URLs plus /bench/baseline/: the minimal Django view the ingestion benchmark compares against."""

from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/baseline/", views.baseline_insert, name="bench-baseline"),
    path("", include("config.urls")),
]
