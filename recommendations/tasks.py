"""recommendations' Celery jobs, on the "recommendations" queue: the nightly build (beat) and the rebuild after
RECS_REBUILD_EVERY new paid orders. Both take the build's lease: a second one while one runs does nothing."""

from __future__ import annotations

import logging

from django.conf import settings

from kernel.celery import periodic_task
from kernel.db import db_for_module
from recommendations.build import BuildBusy, recs_build
from recommendations.models import BuildState

logger = logging.getLogger(__name__)


def _build() -> str:
    try:
        report = recs_build()
    except BuildBusy:
        logger.info("a build of the recommendations is running: this one skips")
        return "busy"
    logger.info("recommendations built: %s", report)
    return str(report)


@periodic_task(name="recommendations.nightly_build", module="recommendations")
def nightly_build() -> str:
    return _build()


@periodic_task(name="recommendations.rebuild_if_due", module="recommendations")
def rebuild_if_due() -> str:
    """Rebuild if RECS_REBUILD_EVERY paid orders were counted since the last build; else nothing (idempotent)."""
    every = settings.RECS_REBUILD_EVERY
    alias = db_for_module("recommendations")
    if every <= 0 or not BuildState.objects.using(alias).filter(pk=1, paid_since_build__gte=every).exists():
        return "not due"
    return _build()
