"""Outgoing webhooks: integrators' endpoints, their signing secrets, one message per (event, endpoint) and a log
row per try. Private to the module: other modules use webhooks.services."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Endpoint(models.Model):
    """A URL an integrator asked the shop to POST events to."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="The event types it receives (webhooks.services.EVENT_TYPES); empty: all."
    )
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failed try since its last successful one (None: not failing)."
    )
    owner_key_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, editable=False,
        help_text="The API key that made it, which alone sees and changes it through the API; none: made by staff.",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class EndpointSecret(models.Model):
    """A signing secret ("whsec_" + base64 of 32 random bytes). Every secret not expired signs each request, so an
    endpoint has two during a rotation: the new one (no expiry) and the previous one until its expires_at.

    Stored as it is (HMAC needs the secret itself): the database is as sensitive as the secrets."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="secrets")
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="None: the current secret.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"secret of endpoint {self.endpoint_id} from {self.created_at:%Y-%m-%d %H:%M}"


class Message(models.Model):
    """One event for one endpoint: the JSON body and its webhook-id, the same on every try.

    pending -> delivered (an answer 2xx) or failed (410 Gone, or no 2xx until deliver_until). A try claims the
    message (locked_until, lock_token); a try whose worker died leaves it pending, taken again once the lease has
    passed. queued_until: a delivery task was sent for it, so the periodic job does not send another before then.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook_id = models.CharField(max_length=40, unique=True)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="messages")
    source_event_id = models.UUIDField(help_text="The domain event it was made from (a new id for a test ping).")
    event_type = models.CharField(max_length=60, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    deliver_until = models.DateTimeField(help_text="No try after this: the message has failed.")
    locked_until = models.DateTimeField(null=True, blank=True)
    lock_token = models.UUIDField(null=True, blank=True)
    queued_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source_event_id", "endpoint"], name="webhook_message_once_per_endpoint"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "delivered", "failed"]), name="webhook_message_status"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_message_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_message_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id}"


class Attempt(models.Model):
    """One try of a message: written when the try starts (in flight), completed with its outcome. A try whose
    worker died stays in flight until the next try of its message marks it lost."""

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        LOST = "lost", "Lost (worker stopped)"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="1 for the message's first try.")
    at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_body = models.TextField(blank=True, help_text="The start of the endpoint's answer.")

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="webhook_attempt_number")]

    def __str__(self) -> str:
        return f"try {self.number} of {self.message_id}: {self.outcome}"
