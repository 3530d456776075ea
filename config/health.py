"""Probes for load balancers and orchestrators.

/healthz: the process is alive and serving; no I/O, so it never fails because a dependency is slow.
/readyz: the database(s), the cache and the task broker answer; 503 naming the failing part otherwise.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from kernel import bus

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_databases() -> str:
    for alias in connections:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return "ok"


def _check_cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("value written was not read back")
    cache.delete(key)
    return "ok"


def _check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "ok (in-process tasks, no broker)"
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_databases,
    "cache": _check_cache,
    "broker": _check_broker,
}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            results[name] = check()
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"unavailable: {type(exc).__name__}"
            failing.append(name)
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("readiness check %s took %.1f ms", name, elapsed_ms)
    body: dict = {"checks": results}
    if "database" not in failing:  # how far event delivery is behind: reported, not a reason to take traffic away
        try:
            state = bus.outbox_state()
            body["outbox"] = {"pending": state.pending, "dead": state.dead, "lag_seconds": round(state.lag_seconds, 1)}
        except Exception as exc:
            logger.warning("outbox state unknown: %s", exc)
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing, **body}, status=503)
    return JsonResponse({"status": "ok", **body})
