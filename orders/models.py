"""Orders, their lines (snapshots of what was bought) and their status history. Private to orders."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "Awaiting payment"
        PAID = "paid", "Paid"
        FULFILLING = "fulfilling", "Being packed"
        PARTIALLY_SHIPPED = "partially_shipped", "Partly shipped"
        SHIPPED = "shipped", "Shipped"
        PARTIALLY_DELIVERED = "partially_delivered", "Partly delivered"
        DELIVERED = "delivered", "Delivered"
        PARTIALLY_RETURNED = "partially_returned", "Partly returned"
        RETURNED = "returned", "Returned"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    number = models.CharField(max_length=20, unique=True)
    user_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The customer's id in accounts (none for guests)."
    )
    email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    shipping = models.DecimalField(max_digits=12, decimal_places=2)
    tax = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    prices_include_tax = models.BooleanField()
    shipping_method = models.CharField(max_length=20)
    shipping_address = models.JSONField()
    billing_address = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where the invoice goes: the shipping address unless the customer gave one.",
    )
    reservation_key = models.CharField(max_length=255)
    payment_id = models.BigIntegerField(null=True, blank=True, help_text="The payment's id in payments.")
    payment_attempt = models.PositiveSmallIntegerField(
        default=1, help_text='Which attempt at paying payment_id is: 1 at checkout, one more per "Pay again".'
    )
    payment_failure = models.CharField(
        max_length=300, blank=True, help_text="Why the current attempt's payment failed, in the customer's words."
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    access_token = models.CharField(max_length=64, help_text="Lets a guest open their order from the email.")
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    amount_refunded = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, help_text="What orders asked payments to refund, in all."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0, subtotal__gte=0, shipping__gte=0), name="order_amounts"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("total")), name="order_refunds_within_total"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """What was bought, as it was when it was bought: not a reference into catalog."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    variant_label = models.CharField(max_length=200, blank=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)
    quantity_shipped = models.PositiveIntegerField(default=0)
    quantity_delivered = models.PositiveIntegerField(default=0)
    quantity_returned = models.PositiveIntegerField(default=0, help_text="Received back from the customer.")
    quantity_refunded = models.PositiveIntegerField(default=0, help_text="Refunded through a return.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(quantity_shipped__lte=F("quantity"), quantity_delivered__lte=F("quantity_shipped")),
                name="order_line_shipped_within_ordered",
            ),
            models.CheckConstraint(
                condition=Q(quantity_returned__lte=F("quantity_delivered"), quantity_refunded__lte=F("quantity")),
                name="order_line_returned_within_delivered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class StatusChange(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=100, help_text="Who: customer:<id>, staff:<id>, guest or system.")
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} by {self.actor}"


class Shipment(models.Model):
    """A parcel: some or all of an order's lines, packed, then handed to a carrier, then delivered."""

    class Status(models.TextChoices):
        PACKING = "packing", "Being packed"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    number = models.PositiveSmallIntegerField(help_text="1, 2, ... within the order.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PACKING)
    carrier = models.CharField(max_length=40)
    tracking_number = models.CharField(max_length=64, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    capture_amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="What its shipping captured; empty for the last parcel, which captures the rest.",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "number"], name="shipment_number_once_per_order"),
            models.UniqueConstraint(
                fields=["carrier", "tracking_number"], condition=~Q(tracking_number=""), name="shipment_tracking_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.number} ({self.status})"


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="shipment_lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="shipment_line_quantity_positive"),
            models.UniqueConstraint(fields=["shipment", "line"], name="shipment_line_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.line_id}"


class CarrierNotification(models.Model):
    """A delivery update a carrier sent, recorded once per (carrier, event id): a replay changes nothing."""

    carrier = models.CharField(max_length=40)
    event_id = models.CharField(max_length=100)
    tracking_number = models.CharField(max_length=64)
    status = models.CharField(max_length=30)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["carrier", "event_id"], name="carrier_notification_once")]

    def __str__(self) -> str:
        return f"{self.carrier} {self.event_id}"


class Return(models.Model):
    """A customer's request to send delivered items back, then what staff did with it."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    class Reason(models.TextChoices):
        DAMAGED = "damaged", "Arrived damaged"
        WRONG_ITEM = "wrong_item", "Wrong item sent"
        NOT_AS_DESCRIBED = "not_as_described", "Not as described"
        CHANGED_MIND = "changed_mind", "No longer needed"
        OTHER = "other", "Other"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    number = models.PositiveSmallIntegerField(help_text="1, 2, ... within the order.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    requested_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(null=True, blank=True)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        ordering = ["order_id", "number"]
        constraints = [models.UniqueConstraint(fields=["order", "number"], name="return_number_once_per_order")]

    def __str__(self) -> str:
        return f"{self.order_id}/R{self.number} ({self.status})"


class ReturnLine(models.Model):
    ret = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField()
    restock = models.BooleanField(null=True, blank=True, help_text="Decided when received: back to sale stock?")
    refunded = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="return_line_quantity_positive"),
            models.UniqueConstraint(fields=["ret", "line"], name="return_line_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.line_id}"


class RefundRequest(models.Model):
    """A refund of an amount asked through the API, by its requester's key: asked again (a retry whose first answer
    was lost), it refunds nothing more. The refund's own record is the order's history and payments' transaction."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refund_requests")
    key = models.CharField(max_length=80, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.order_id} {self.amount}"
