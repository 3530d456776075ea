"""The outbox (events waiting for delivery) and the record of which consumer has applied which event."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """One published domain event. Written in the publishing transaction; delivered after commit."""

    id = models.UUIDField(primary_key=True, help_text="The event's id (DomainEvent.event_id).")
    name = models.CharField(max_length=200, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="The sweep re-delivers an undelivered event once this time has passed."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True),
                name="outbox_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.id}"


class ProcessedEvent(models.Model):
    """A consumer applied an event. The unique pair is what makes every handler idempotent."""

    consumer = models.CharField(max_length=200)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="processed_event_once")]

    def __str__(self) -> str:
        return f"{self.consumer} applied {self.event_id}"


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the heartbeat task: shows in the admin that workers are alive."""

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.worker} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
