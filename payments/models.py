"""Payments and their gateway transactions. Private to payments: other modules use payments.services."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for the customer on the gateway's page, or for the gateway
        AUTHORIZED = "authorized", "Authorised"
        CAPTURED = "captured", "Captured"  # partly or fully; see amount_captured
        VOIDED = "voided", "Voided"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"  # fully; partial refunds keep status captured

    reference = models.CharField(max_length=64, db_index=True, help_text="The caller's reference, e.g. ORD-1001.")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    amount_authorized = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    amount_captured = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    gateway_reference = models.CharField(max_length=255, blank=True, db_index=True)
    gateway_alias = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="Another id the gateway uses (Stripe: PaymentIntent)."
    )
    redirect_url = models.URLField(max_length=1000, blank=True)
    return_url = models.URLField(max_length=1000, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(amount_authorized__lte=F("amount")), name="payment_auth_within_amount"),
            models.CheckConstraint(
                condition=Q(amount_captured__lte=F("amount_authorized")), name="payment_capture_within_auth"
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_captured")), name="payment_refund_within_capture"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.status})"


class Transaction(models.Model):
    """One operation asked of the gateway, with what it answered."""

    class Kind(models.TextChoices):
        AUTHORIZE = "authorize", "Authorise"
        CAPTURE = "capture", "Capture"
        VOID = "void", "Void"
        REFUND = "refund", "Refund"

    class Result(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=255, unique=True)
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.PENDING)
    gateway_reference = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="transaction_amount_not_negative")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}: {self.result}"


class GatewayNotification(models.Model):
    """A notification received from a gateway, kept once per gateway event id (replays are ignored)."""

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="notification_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_type} {self.event_id}"


class TestGatewayCharge(models.Model):
    """The built-in test gateway's own books (what a real gateway keeps on its side)."""

    __test__ = False  # not a pytest test class

    token = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="created")  # created, authorized, declined, captured, ...
    decline_code = models.CharField(max_length=40, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    captured = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    return_url = models.URLField(max_length=1000)
    notify_url = models.URLField(max_length=1000)
    operations = models.JSONField(default=dict, help_text="idempotency key -> result, as a real gateway keeps")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.token} {self.amount} {self.currency} {self.status}"
