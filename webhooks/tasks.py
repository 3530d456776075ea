"""Celery tasks of webhooks, on the webhooks queue: one try of a message, and the periodic jobs."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings

from kernel.celery import periodic_task
from webhooks import delivery

# No retries of its own: a failed try schedules the next one on the message (exponential back-off), and
# webhooks.send_due sends it when due. Late acknowledgement: a task whose worker dies goes back to the queue, and
# the message's lease keeps a second worker from sending the try again before it expires. The time limits end a
# try (a request that trickles its answer) before its lease does.
LEASE = settings.WEBHOOKS_LEASE_SECONDS


@shared_task(name=delivery.DELIVER, acks_late=True, reject_on_worker_lost=True, max_retries=0,
             soft_time_limit=max(LEASE - 10, 1), time_limit=max(LEASE - 5, 2))  # fmt: skip
def deliver(message_id: int, now: str | None = None) -> str:
    return delivery.deliver(message_id, now=datetime.fromisoformat(now) if now else None)


@periodic_task(name="webhooks.send_due", module="webhooks")
def send_due(now: str | None = None) -> int:
    """Every WEBHOOKS_SWEEP_SECONDS: a delivery task for each message whose next try is due."""
    return delivery.send_due(now=datetime.fromisoformat(now) if now else None)


@periodic_task(name="webhooks.purge", module="webhooks")
def purge() -> int:
    return delivery.purge()
