import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("firebreak")
app.config_from_object("django.conf:settings", namespace="CELERY")


def task_packages() -> list[str]:
    """Every installed app, and every package inside one of ours that holds a `tasks` module (`tasks.py` or a
    `tasks/` package): autodiscovery imports `<package>.tasks` for each, so a task module is registered on the
    worker wherever it lives (incidents.alerting, incidents.automation, ...), without importing it by hand."""
    from django.apps import apps
    from django.conf import settings

    root = Path(settings.BASE_DIR).resolve()
    packages = []
    for config in apps.get_app_configs():
        packages.append(config.name)
        app_dir = Path(config.path).resolve()
        if not app_dir.is_relative_to(root):
            continue  # a third-party app: only its top-level tasks module, as Celery does by default
        for module in sorted([*app_dir.rglob("tasks.py"), *app_dir.rglob("tasks/__init__.py")]):
            package_dir = module.parent if module.name == "tasks.py" else module.parent.parent
            parts = package_dir.relative_to(app_dir).parts
            if parts and all((app_dir.joinpath(*parts[: i + 1]) / "__init__.py").is_file() for i in range(len(parts))):
                packages.append(".".join([config.name, *parts]))
    return packages


app.autodiscover_tasks(task_packages)
