from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from oncall.models import Team


class MonthlyReport(models.Model):
    """A month's metrics, computed once and kept as they were when generated, then sent once."""

    month = models.CharField(max_length=7, help_text="YYYY-MM")
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="monthly_reports",
        help_text="Empty: org-wide",
    )
    time_zone = models.CharField(max_length=64)
    generated_at = models.DateTimeField()
    data = models.JSONField(encoder=DjangoJSONEncoder)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-month", "team__name"]
        constraints = [
            # one org-wide report per month, one per team per month (two partial indexes: NULLs are distinct)
            models.UniqueConstraint(
                fields=["month"], condition=Q(team__isnull=True), name="metrics_report_one_org_per_month"
            ),
            models.UniqueConstraint(
                fields=["month", "team"], condition=Q(team__isnull=False), name="metrics_report_one_per_team_month"
            ),
            models.CheckConstraint(
                condition=Q(month__regex=r"^\d{4}-(0[1-9]|1[0-2])$"), name="metrics_report_month_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.team or 'organisation'}"
