"""The Celery app. Settings come from Django settings under the CELERY_ prefix (see config/settings.py)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """What Django does around a request: close connections that are too old or broken (CELERY_DB_REUSE_MAX
    keeps them open otherwise). Not for tasks run eagerly, inside the caller's transaction."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
