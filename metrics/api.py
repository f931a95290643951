from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import StrictBodyMixin
from metrics import selectors
from metrics.selectors import Month
from oncall.models import Team


class MonthlyQuery(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM; default: the previous month")
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False)

    def validate_month(self, value: str) -> Month:
        try:
            return Month.parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class TrendQuery(serializers.Serializer):
    months = serializers.IntegerField(min_value=1, max_value=60, default=12)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False)


def _last_month() -> str:
    today = timezone.now().date()
    return str(Month(today.year, today.month).previous())


class MonthlyMetricsView(StrictBodyMixin, APIView):
    """Every metric of one month (org-wide, or one team in its time zone)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM"),
            OpenApiParameter("team", str, description="team slug"),
        ],
        responses=dict,
    )
    def get(self, request):
        query = MonthlyQuery(data={"month": _last_month(), **request.query_params.dict()})
        query.is_valid(raise_exception=True)
        data = selectors.monthly_metrics(month=query.validated_data["month"], team=query.validated_data.get("team"))
        return Response(data.as_dict())


class TrendView(StrictBodyMixin, APIView):
    """Counts by severity and median TTR for the last N months (the current month included)."""

    @extend_schema(
        parameters=[OpenApiParameter("months", int), OpenApiParameter("team", str, description="team slug")],
        responses=dict,
    )
    def get(self, request):
        query = TrendQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        today = timezone.now().date()
        rows = selectors.trend(
            months=query.validated_data["months"],
            end_month=Month(today.year, today.month),
            team=query.validated_data.get("team"),
        )
        return Response({"months": rows})
