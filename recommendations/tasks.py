"""recommendations' Celery jobs, on the "recommendations" queue: the nightly build (beat) and the rebuild after
RECS_REBUILD_EVERY new paid orders, at most every RECS_REBUILD_MIN_SECONDS (asked by the paid order that makes it
due, and by beat every RECS_REBUILD_MIN_SECONDS for one held back by the interval). Both take the build's lease: a
second one while one runs does nothing."""

from __future__ import annotations

import logging

from kernel.celery import periodic_task
from kernel.db import db_for_module
from recommendations.build import BuildBusy, recs_build
from recommendations.ledger import rebuild_due
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
    """Rebuild if it is due (recommendations.ledger.rebuild_due); else nothing (idempotent)."""
    alias = db_for_module("recommendations")
    state = BuildState.objects.using(alias).filter(pk=1).values("paid_since_build", "built_at").first()
    if state is None or not rebuild_due(**state):
        return "not due"
    return _build()
