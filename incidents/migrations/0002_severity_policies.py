from datetime import timedelta

from django.db import migrations

POLICIES = [
    # severity, name, definition, response target, update cadence, postmortem required, channel required
    ("P0", "Critical", "Site down or revenue bleeding: customers cannot use the product.", 5, 30, True, True),
    ("P1", "Major", "Core functionality broken for many customers; no acceptable workaround.", 15, 60, True, True),
    ("P2", "Minor", "Degraded performance or a non-core feature broken; a workaround exists.", 60, 240, True, False),
    ("P3", "Low", "Minor bug or cosmetic issue with little customer impact.", 24 * 60, None, False, False),
]


def create_policies(apps, schema_editor):
    SeverityPolicy = apps.get_model("incidents", "SeverityPolicy")
    for severity, name, definition, target, cadence, postmortem, channel in POLICIES:
        SeverityPolicy.objects.update_or_create(
            severity=severity,
            defaults={
                "name": name,
                "definition": definition,
                "response_target": timedelta(minutes=target),
                "update_cadence": timedelta(minutes=cadence) if cadence else None,
                "postmortem_required": postmortem,
                "postmortem_deadline": timedelta(days=7),
                "channel_required": channel,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(create_policies, migrations.RunPython.noop)]
