from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations

GROUPS = ["Managers", "Responders"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in GROUPS:
        Group.objects.get_or_create(name=name)
    # Their permissions are synced after every migrate from the grants each app declares (oncall/roles.py).


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("oncall", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        BtreeGistExtension(),
        migrations.RunPython(create_groups, delete_groups),
    ]
