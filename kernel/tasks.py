"""Celery tasks of the kernel: hand an event to one subscriber, sweep and purge the outbox, worker heartbeat."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from kernel import bus
from kernel.celery import idempotent_task, retry_countdown
from kernel.models import WorkerHeartbeat


@shared_task(name="kernel.run_handler", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=10)
def run_handler(self, event_id: str, consumer: str, using: str = "default") -> bool:
    try:
        return bus.handle(event_id, consumer, using=using)
    except Exception as exc:
        if self.request.is_eager:
            raise  # in-process: bus.deliver records the error and the sweep tries again later
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@idempotent_task(name="kernel.outbox_sweep", max_retries=0)
def outbox_sweep() -> int:
    return bus.sweep()


@idempotent_task(name="kernel.outbox_purge", max_retries=0)
def outbox_purge() -> int:
    return bus.purge()


@shared_task(name="kernel.worker_heartbeat", bind=True, acks_late=True, reject_on_worker_lost=True)
def worker_heartbeat(self) -> str:
    worker = self.request.hostname or "in-process"
    WorkerHeartbeat.objects.update_or_create(worker=worker, defaults={"seen_at": timezone.now()})
    return worker
