import csv
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from incidents.services import ImportFailed, incidents_import
from incidents.services.importing import COLUMNS


class Command(BaseCommand):
    help = (
        "Import incident history from a CSV file with the columns "
        + ", ".join(COLUMNS)
        + " (optional: duplicate_of). Timestamps are ISO 8601 with offsets. All rows or none."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.exists():
            raise CommandError(f"{path}: no such file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or []) and column != "ref"]
            if missing:
                raise CommandError(f"{path}: missing column(s) {', '.join(missing)} in the header (line 1)")
            rows = list(reader)
        show_progress = len(rows) >= 1000

        def progress(done: int, total: int) -> None:
            if show_progress:
                width = 30
                filled = int(width * done / total)
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
                if done == total:
                    sys.stderr.write("\n")

        try:
            count = incidents_import(rows=rows, source_name=path.name, progress=progress)
        except ImportFailed as exc:
            for error in exc.errors[:200]:
                self.stderr.write(f"{path.name}: {error}")
            if len(exc.errors) > 200:
                self.stderr.write(f"… and {len(exc.errors) - 200} more")
            raise CommandError(f"{len(exc.errors)} error(s) in {path.name}; nothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(f"Imported {count} incident(s) from {path.name}."))
