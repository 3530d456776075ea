"""Task defaults for work that must not be lost, the task queues, and the lock that keeps a periodic job single.

Queues. Tasks go to one queue per group (QUEUE_GROUPS). A queue's name is derived when the task is sent from the
app's default queue (settings.CELERY_QUEUE, "shop"): "shop.email", "shop.fulfilment", ... An event subscriber's
group is declared with kernel.bus.subscribe(queue=...); a named task's group is given by the router in
config.celery. A worker takes the queues it is started with: worker_queues() names them.

Tasks. Every task in the shop is idempotent and takes ids, never objects, so each is declared with late
acknowledgement and reject-on-worker-lost (a task whose worker dies goes back to the queue) and retries with
exponential backoff and jitter, capped below settings.CELERY_MAX_COUNTDOWN (the broker's visibility timeout on
Redis, its consumer timeout on RabbitMQ); a try whose pool process died counts as a try. After its last try, or
one stopped by the hard time limit, a task is dead: it is recorded (kernel.DeadTask, with
its name, arguments and error), shown in the admin and sent again from there. Nothing retries for ever.

Periodic jobs (periodic_task) run once per beat tick, with no retries (the next tick is the retry) and no dead
record, under exclusive(name): when two workers, or two beats, start the same job at once, one runs it and the
others skip.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Task, current_app, shared_task
from celery.signals import task_failure
from django.conf import settings

from kernel.db import db_for_module

logger = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 600

# The queue groups. "events" is the default of an event subscriber (kernel.bus.subscribe).
EMAIL, FULFILMENT, PAYMENTS, EVENTS, RECOMMENDATIONS = "email", "fulfilment", "payments", "events", "recommendations"
WEBHOOKS = "webhooks"  # outgoing webhooks: slow or failing integrators' endpoints never hold up the shop's own work
QUEUE_GROUPS = (EMAIL, FULFILMENT, PAYMENTS, EVENTS, RECOMMENDATIONS, WEBHOOKS)


def queue_name(group: str, app: Any = None) -> str:
    """The queue of a group, derived from the app's default queue now ("shop" -> "shop.email")."""
    if group not in QUEUE_GROUPS:
        raise ValueError(f"unknown queue group {group!r}: one of {', '.join(QUEUE_GROUPS)}")
    return f"{(app or current_app).conf.task_default_queue}.{group}"


def worker_queues(base: str, groups: Iterable[str] | None = None) -> list[str]:
    """The queues a worker listens on: the groups' queues under `base`. Without groups, every group's queue and
    `base` itself (where a task no router knows lands)."""
    chosen = list(QUEUE_GROUPS if groups is None else groups)
    unknown = set(chosen) - set(QUEUE_GROUPS)
    if unknown:
        raise ValueError(f"unknown queue group(s) {', '.join(sorted(unknown))}: use {', '.join(QUEUE_GROUPS)}")
    return ([base] if groups is None else []) + [f"{base}.{group}" for group in chosen]


class ShopTask(Task):
    """A task whose last failed try is recorded as dead (kernel.DeadTask), unless it says record_dead = False."""

    record_dead = True

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if self.record_dead:
            _record_dead(self, exc, task_id, args, kwargs, einfo)


def _record_dead(task: Any, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
    from kernel.deadletter import dead_task_record  # the models: only once the app is running

    dead_task_record(
        name=task.name,
        task_id=task_id or "",
        args=args,
        kwargs=kwargs,
        error=f"{type(exc).__name__}: {exc}",
        traceback=str(einfo or ""),
        attempts=(task.request.retries or 0) + 1,
    )


@task_failure.connect
def _dead_without_on_failure(sender: Any = None, task_id: str = "", exception: BaseException | None = None,
                             args: Any = None, kwargs: Any = None, einfo: Any = None, **_: Any) -> None:  # fmt: skip
    """A try that killed its pool process (the hard time limit, or the last try of one whose process died) fails in
    the worker's main process, where Task.on_failure is not called: record it here."""
    if isinstance(exception, (TimeLimitExceeded, WorkerLostError)) and getattr(sender, "record_dead", False):
        _record_dead(sender, exception, task_id, args, kwargs, einfo)


def idempotent_task(*, name: str, max_retries: int = 8, **options: Any) -> Callable[[Callable], Any]:
    """@shared_task for idempotent work: late ack, re-queue if the worker is lost, retry with backoff, and after
    the last try a dead record."""
    assert RETRY_BACKOFF_MAX <= settings.CELERY_MAX_COUNTDOWN
    if max_retries is None:
        raise ValueError("max_retries=None retries for ever: give a number")
    defaults: dict[str, Any] = {
        "name": name,
        "base": ShopTask,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (Exception,),
        "retry_backoff": 5,
        "retry_backoff_max": RETRY_BACKOFF_MAX,
        "retry_jitter": True,
        "max_retries": max_retries,
        # A try whose pool process dies (killed, out of memory) counts as a try and is retried, so a task that
        # kills its worker each time ends dead instead of going back to the queue for ever.
        "retry_on_worker_lost": True,
    }
    defaults.update(options)
    return shared_task(**defaults)


# ---------------------------------------------------------------- one run of a periodic job at a time


def lock_key(name: str) -> int:
    """A job's name as a PostgreSQL advisory lock key (a signed 64-bit hash, the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def exclusive(name: str, *, module: str = "kernel") -> Iterator[bool]:
    """Hold the lock named `name` for the block, if nobody holds it: yields True if this process has it (run the
    job), False if another holds it (skip this run).

        with exclusive("catalog.expire_reservations", module="catalog") as mine:
            if mine:
                ...

    PostgreSQL's session advisory lock (pg_try_advisory_lock) on the database of `module`, never waited for,
    released at the end of the block, and by the server if the process dies. It needs a session of its own:
    direct connections or a pooler in session mode, not PgBouncer's transaction mode. On another database (SQLite,
    one process) it is a no-op: always True.
    """
    from django.db import connections

    connection = connections[db_for_module(module)]
    if connection.vendor != "postgresql":
        yield True
        return
    key = lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        taken = bool(cursor.fetchone()[0])
    if not taken:
        yield False
        return
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the connection is broken: its session, and so the lock, is gone with it
            logger.warning("could not release the lock of %s", name, exc_info=True)


def periodic_task(*, name: str, module: str, **options: Any) -> Callable[[Callable], Any]:
    """@shared_task for a job beat runs on a schedule (idempotent by itself): one try per run, no dead record (the
    next run is its retry), and run under exclusive(name) on `module`'s database. A run that finds the job
    running elsewhere skips and returns None."""

    def decorator(fun: Callable) -> Any:
        @functools.wraps(fun)
        def run(*args: Any, **kwargs: Any) -> Any:
            with exclusive(name, module=module) as mine:
                if not mine:
                    logger.info("%s is running elsewhere: this run skips", name)
                    return None
                return fun(*args, **kwargs)

        return idempotent_task(name=name, max_retries=0, record_dead=False, **options)(run)

    return decorator
