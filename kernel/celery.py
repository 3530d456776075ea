"""Task defaults for work that must not be lost.

Every task in the shop is idempotent and takes ids, never objects, so each is declared with late acknowledgement
and reject-on-worker-lost (a task whose worker dies goes back to the queue) and retries with exponential backoff
and jitter, capped below the broker's visibility timeout (settings.CELERY_MAX_COUNTDOWN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings

RETRY_BACKOFF_MAX = 600


def idempotent_task(*, name: str, max_retries: int = 8, **options: Any) -> Callable[[Callable], Any]:
    """@shared_task for idempotent work: late ack, re-queue if the worker is lost, retry with backoff."""
    assert RETRY_BACKOFF_MAX <= settings.CELERY_MAX_COUNTDOWN
    defaults: dict[str, Any] = {
        "name": name,
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
