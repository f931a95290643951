from django.core.management.base import BaseCommand, CommandError

from metrics import services
from metrics.selectors import Month
from oncall.models import Team


class Command(BaseCommand):
    help = (
        "Compute (once) and send (once) the monthly review of a month to the managers: org-wide, or one team "
        "with --team. A second run sends nothing unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--team", help="team slug; default: the org-wide report")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the plain-text e-mail; store and send nothing"
        )
        parser.add_argument("--to", help="send to this address only (the report stays unsent for the managers)")
        parser.add_argument("--force", action="store_true", help="recompute the snapshot and send again")

    def handle(self, *args, **options):
        try:
            month = Month.parse(options["month"])
        except ValueError as exc:
            raise CommandError(f"--month: {exc}") from None
        team = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"--team: no team with slug {options['team']!r}")
        if options["dry_run"]:
            from metrics.models import MonthlyReport
            from metrics.selectors import report_data

            stored = MonthlyReport.objects.filter(month=str(month), team=team).first()
            report = stored or MonthlyReport(month=str(month), team=team, data=report_data(month=month, team=team))
            self.stdout.write(services.monthly_report_render(report=report).text)
            return
        report = services.monthly_report_generate(month=month, team=team, force=options["force"])
        queued = services.monthly_report_send(report=report, force=options["force"], to=options["to"])
        if queued:
            self.stdout.write(self.style.SUCCESS(f"Queued the {report} report to: {', '.join(queued)}"))
            return
        # nothing queued now: sent before, or by a run at the same time (it held the lock; read what it stored)
        report.refresh_from_db(fields=["sent_at"])
        if options["to"] or report.sent_at is None:
            self.stdout.write(
                f"The {report} report was already sent to {options['to'] or 'its recipients'}; use --force."
            )
        else:
            self.stdout.write(
                f"The {report} report was already sent on {report.sent_at:%Y-%m-%d %H:%M} UTC; use --force."
            )
