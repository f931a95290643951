from celery import shared_task

from metrics import services


@shared_task
def send_monthly_reports() -> int:
    """Hourly: last month's reports go out once each zone has passed the 1st at 09:00 local time."""
    return services.monthly_reports_send_due()
