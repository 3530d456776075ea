"""The outbox (one delivery row per event and subscriber) and the inbox of subscribers on another database."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Delivery(models.Model):
    """One published domain event, to be applied by one subscriber.

    Written in the publishing transaction (one row per subscriber, in one statement), so "delivered" means every
    row of the event is done. A delivery is tried right after commit, then by the sweep with back-off; after
    OUTBOX_MAX_ATTEMPTS tries it is dead, shown in the admin with its last error, and can be retried from there.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        DEAD = "dead", "Dead"

    event_id = models.UUIDField(help_text="The event's id (DomainEvent.event_id).")
    event_name = models.CharField(max_length=200, db_index=True)
    payload = models.JSONField()
    consumer = models.CharField(max_length=200, help_text="The subscriber: <module>.<handler>.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=1, help_text="How many times it was handed to its subscriber.")
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="The sweep tries a pending delivery again once this time has passed."
    )
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event_id", "consumer"], name="delivery_once_per_consumer")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_due_idx"),
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="delivery_lag_idx"),
            models.Index(fields=["done_at"], condition=models.Q(status="done"), name="delivery_purge_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} {self.event_id} -> {self.consumer}"


class ProcessedEvent(models.Model):
    """A subscriber whose module lives on another database than the publisher's applied an event.

    Its inbox: the unique pair is claimed in the subscriber's own transaction, so the event is applied once even
    though the delivery row (in the publisher's database) is marked done only afterwards.
    """

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


class DeadTask(models.Model):
    """A Celery task that failed its last try (kernel.celery.idempotent_task): what it was called with and why it
    failed. Staff send it again from the admin, which marks the row retried; a new failure is a new row."""

    class Status(models.TextChoices):
        DEAD = "dead", "Dead"
        RETRIED = "retried", "Retried"

    name = models.CharField(
        max_length=200, db_index=True, help_text="The task's name, for example orders.expire_unpaid."
    )
    task_id = models.CharField(max_length=255, blank=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    error = models.TextField(help_text="The exception of the last try.")
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1, help_text="How many times it was tried.")
    failed_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DEAD)
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at", "-id"]
        indexes = [models.Index(fields=["status", "failed_at"], name="deadtask_status_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.task_id} ({self.status})"


class IdempotentRequest(models.Model):
    """A REST API POST sent with an Idempotency-Key header, and the answer it got (kernel.idempotency)."""

    principal = models.CharField(max_length=80, help_text="Whose key space: an API key's id or a staff user's.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=bytes)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotent_request_unique")]
        indexes = [models.Index(fields=["started_at"], name="idempotent_request_started")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
