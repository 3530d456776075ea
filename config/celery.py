"""The Celery app. Settings come from Django settings under the CELERY_ prefix (see config/settings.py).

route_task (settings.CELERY_TASK_ROUTES) sends each named task to the queue of its group (kernel.celery), named
when it is sent after the app's default queue: payments.resolve_pending to "shop.payments". kernel.bus sends an
event subscriber's task (kernel.run_handler) to its subscription's own group.
"""

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The queue group of each named task; a task of a module not listed here goes by its module (MODULE_QUEUE_GROUPS).
TASK_QUEUE_GROUPS = {
    "kernel.run_handler": "events",  # kernel.bus names the subscriber's group when it sends one
    "kernel.outbox_sweep": "events",
    "kernel.outbox_purge": "events",
    "kernel.worker_heartbeat": "events",
    "payments.resolve_pending": "payments",
    "payments.test_gateway_notify": "payments",
    "catalog.expire_reservations": "fulfilment",
    "catalog.reconcile_reservations": "fulfilment",
    "orders.expire_unpaid": "fulfilment",
    "webhooks.deliver": "webhooks",
    "webhooks.send_due": "webhooks",
}
MODULE_QUEUE_GROUPS = {
    "kernel": "events",
    "catalog": "fulfilment",
    "orders": "fulfilment",
    "payments": "payments",
    "recommendations": "recommendations",
    "webhooks": "webhooks",
}


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router: {"queue": "<default queue>.<group>"} for a task of a known group; None (the default queue
    itself) for any other. A queue given to apply_async wins over this."""
    from kernel.celery import queue_name

    group = TASK_QUEUE_GROUPS.get(name) or MODULE_QUEUE_GROUPS.get(name.split(".", 1)[0])
    if group is None:
        return None
    return {"queue": queue_name(group, task.app if task is not None else app)}


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """What Django does around a request: close connections that are too old or broken (CELERY_DB_REUSE_MAX
    keeps them open otherwise). Not for tasks run eagerly, inside the caller's transaction."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _freeze_the_loaded_app(**kwargs) -> None:
    """As gunicorn's when_ready (config/gunicorn.conf.py): the worker's app is loaded before its pool starts;
    the collector leaves those objects alone from now on."""
    gc.collect()
    gc.freeze()
