"""Task defaults for work that must not be lost, and the task queues.

Queues. Tasks go to one queue per group (QUEUE_GROUPS). A queue's name is derived when the task is sent from the
app's default queue (settings.CELERY_QUEUE, "shop"): "shop.email", "shop.fulfilment", ... An event subscriber's
group is declared with kernel.bus.subscribe(queue=...); a named task's group is given by the router in
config.celery. A worker takes the queues it is started with: worker_queues() names them.

Tasks. Every task in the shop is idempotent and takes ids, never objects, so each is declared with late
acknowledgement and reject-on-worker-lost (a task whose worker dies goes back to the queue) and retries with
exponential backoff and jitter, capped below settings.CELERY_MAX_COUNTDOWN (the broker's visibility timeout on
Redis, its consumer timeout on RabbitMQ). After its last try a task is dead: it is recorded (kernel.DeadTask, with
its name, arguments and error), shown in the admin and sent again from there. Nothing retries for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings

RETRY_BACKOFF_MAX = 600

# The queue groups. "events" is the default of an event subscriber (kernel.bus.subscribe).
EMAIL, FULFILMENT, PAYMENTS, EVENTS, RECOMMENDATIONS = "email", "fulfilment", "payments", "events", "recommendations"
QUEUE_GROUPS = (EMAIL, FULFILMENT, PAYMENTS, EVENTS, RECOMMENDATIONS)


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
        if not self.record_dead:
            return
        from kernel.deadletter import dead_task_record  # the models: only once the app is running

        dead_task_record(
            name=self.name,
            task_id=task_id,
            args=args,
            kwargs=kwargs,
            error=f"{type(exc).__name__}: {exc}",
            traceback=str(einfo or ""),
            attempts=(self.request.retries or 0) + 1,
        )


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
    }
    defaults.update(options)
    return shared_task(**defaults)
