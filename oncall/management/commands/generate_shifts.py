from django.core.management.base import BaseCommand

from oncall import services
from oncall.models import Rotation


class Command(BaseCommand):
    help = "Materialise shifts of every active rotation (or one, --rotation ID) up to its horizon."

    def add_arguments(self, parser):
        parser.add_argument("--rotation", type=int, help="Only this rotation id")

    def handle(self, *args, **options):
        if options["rotation"]:
            rotation = Rotation.objects.get(pk=options["rotation"])
            results = [services.rotation_generate(rotation=rotation)]
        else:
            results = services.rotations_generate_all()
        for result in results:
            self.stdout.write(
                f"rotation {result.rotation_id}: {result.planned_slots} slot(s) planned, "
                f"{len(result.gap_slots)} gap(s), {len(result.rest_warnings)} rest warning(s), "
                f"{len(result.changed_user_ids)} person(s) notified of a change"
            )
