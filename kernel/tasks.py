"""Celery tasks of the kernel: hand an event to one subscriber, sweep and purge the outbox, worker heartbeat.

The sweep and the purge are periodic jobs: one run at a time across every worker and beat (kernel.celery.exclusive
on the default database); each is idempotent by itself too (the sweep claims each row by a conditional update)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from kernel import bus
from kernel.celery import periodic_task
from kernel.models import WorkerHeartbeat


@shared_task(name="kernel.run_handler", acks_late=True, reject_on_worker_lost=True, max_retries=0)
def run_handler(event_id: str, consumer: str, using: str = "default") -> bool:
    """Apply one event to one subscriber. No retries of its own: a failure is recorded on the delivery row and the
    outbox sweep (the one retry mechanism) tries again with back-off. A worker killed mid-task: the broker hands
    the task to another worker (late acknowledgement), and the claim keeps it applied once."""
    return bus.handle(event_id, consumer, using=using)


@periodic_task(name="kernel.outbox_sweep", module="kernel")
def outbox_sweep() -> int:
    return bus.sweep()


@periodic_task(name="kernel.outbox_purge", module="kernel")
def outbox_purge() -> int:
    return bus.purge()


@shared_task(name="kernel.worker_heartbeat", bind=True, acks_late=True, reject_on_worker_lost=True)
def worker_heartbeat(self) -> str:
    worker = self.request.hostname or "in-process"
    WorkerHeartbeat.objects.update_or_create(worker=worker, defaults={"seen_at": timezone.now()})
    return worker


@periodic_task(name="kernel.idempotency_purge", module="kernel")
def idempotency_purge() -> int:
    from kernel.idempotency import idempotency_purge as purge

    return purge()
