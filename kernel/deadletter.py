"""Dead tasks: a task that failed its last try is recorded with its arguments and error, and sent again on request.

Private to the kernel (kernel.celery's task base records, the admin retries). The rows live in the default
database: a task belongs to no module's transaction.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import current_app
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from kernel.models import DeadTask

logger = logging.getLogger(__name__)

DEAD, RETRIED = DeadTask.Status.DEAD, DeadTask.Status.RETRIED


def _jsonable(value: Any, fallback: Any) -> Any:
    """What the task was called with, as JSON (what the broker carried). Something JSON cannot say is kept as
    its repr, to be read, not re-sent."""
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return fallback


def dead_task_record(
    *, name: str, task_id: str, args: Any, kwargs: Any, error: str, traceback: str, attempts: int
) -> None:
    """Record a task that failed its last try. Never raises: the failure is logged whatever happens."""
    args = list(args or ())
    kwargs = dict(kwargs or {})
    logger.error("task %s %s is dead after %s tries: %s (args %r, kwargs %r)", name, task_id, attempts, error, args,
                 kwargs)  # fmt: skip
    try:
        DeadTask.objects.create(
            name=name,
            task_id=task_id or "",
            args=_jsonable(args, [repr(arg) for arg in args]),
            kwargs=_jsonable(kwargs, {key: repr(value) for key, value in kwargs.items()}),
            error=error[:4000],
            traceback=traceback[-20000:],
            attempts=attempts,
        )
    except Exception:
        logger.exception("could not record the dead task %s %s", name, task_id)


def _send(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Send the task again, routed as any other (its queue is its group's, under the current default queue)."""
    task = current_app.tasks.get(name)
    if task is not None:
        task.apply_async(args=args, kwargs=kwargs)  # in-process when there is no broker
    else:  # not registered in this process (a task of a worker-only module): by name
        current_app.send_task(name, args=args, kwargs=kwargs)


def dead_tasks_retry(*, ids: list[int]) -> int:
    """Staff's "retry": send each dead task of `ids` again with its arguments and a fresh set of tries, and mark
    its row retried. A row already retried is left alone (two staff pressing at once send it once). Returns how
    many were sent."""
    sent = 0
    rows = DeadTask.objects.filter(pk__in=ids, status=DEAD).order_by("failed_at", "id")
    for pk, name, args, kwargs in list(rows.values_list("pk", "name", "args", "kwargs")):
        if not DeadTask.objects.filter(pk=pk, status=DEAD).update(status=RETRIED, retried_at=timezone.now()):
            continue
        try:
            _send(name, list(args or []), dict(kwargs or {}))
        except Exception as exc:  # the broker is down: still dead, to be retried later
            logger.warning("could not send the dead task %s (%s) again: %s", name, pk, exc)
            DeadTask.objects.filter(pk=pk).update(status=DEAD, retried_at=None)
            continue
        sent += 1
    return sent
