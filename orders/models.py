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
    discount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0,
        help_text="Taken off the goods in all (promotion and voucher); allocated to the lines' discount.",
    )  # fmt: skip
    promotion_name = models.CharField(max_length=100, blank=True, help_text="The automatic promotion applied.")
    promotion_discount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    voucher_code = models.CharField(max_length=40, blank=True, help_text="The voucher code the customer used.")
    voucher_discount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, help_text="What the voucher took off the goods."
    )
    shipping_discount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, help_text="Delivery charge waived by a free delivery voucher."
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
            models.CheckConstraint(
                condition=Q(discount__gte=0, discount__lte=F("subtotal"), shipping_discount__gte=0),
                name="order_discount_within_subtotal",
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
    discount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0,
        help_text="This line's share of the order's discount: it paid line_total - discount.",
    )  # fmt: skip
    quantity_shipped = models.PositiveIntegerField(default=0)
    quantity_delivered = models.PositiveIntegerField(default=0)
    quantity_returned = models.PositiveIntegerField(default=0, help_text="Received back from the customer.")
    quantity_refunded = models.PositiveIntegerField(default=0, help_text="Refunded through a return.")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(discount__gte=0, discount__lte=F("line_total")), name="order_line_discount_within_total"
            ),
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


class OrderEmail(models.Model):
    """An email the customer was sent about their order, once per fact: a payment failure per attempt, a
    cancellation, a refund per refund (its key). The row is written in the same transaction as the sending, so a
    mail server that refuses undoes it and the delivery is tried again; a second delivery of the event finds it."""

    class Kind(models.TextChoices):
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64, blank=True, help_text="Which one of its kind: the attempt, the refund.")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order_id", "sent_at", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "kind", "key"], name="order_email_once")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind} {self.key}"


# ---------------------------------------------------------------- vouchers and promotions (orders.vouchers)


class Discount(models.TextChoices):
    PERCENTAGE = "percentage", "Percentage off"
    FIXED = "fixed", "Fixed amount off"
    FREE_SHIPPING = "free_shipping", "Free delivery"


class Voucher(models.Model):
    """A code a customer types. times_used counts the uses not given back; the database keeps it within
    usage_limit, and placing an order takes the row lock before counting (orders.vouchers)."""

    code = models.CharField(max_length=40, unique=True, help_text="Stored in capitals; customers may type any case.")
    name = models.CharField(max_length=100, blank=True, help_text="For staff; customers see the code.")
    kind = models.CharField(max_length=20, choices=Discount.choices, default=Discount.PERCENTAGE)
    value = models.DecimalField(
        max_digits=12, decimal_places=2, default=0,
        help_text="Percent (10 = 10 %) or amount in the shop's currency; ignored for free delivery.",
    )  # fmt: skip
    minimum_spend = models.DecimalField(
        max_digits=12, decimal_places=2, default=0,
        help_text="On the goods it applies to, after any automatic promotion.",
    )  # fmt: skip
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: valid from now on.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no end.")
    category_ids = models.JSONField(
        default=list, blank=True, help_text="Catalog category ids (with their subcategories); empty: all."
    )
    product_ids = models.JSONField(default=list, blank=True, help_text="Catalog product ids; empty: all.")
    usage_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Uses in all; empty: no limit.")
    per_customer_limit = models.PositiveIntegerField(
        null=True, blank=True, default=1, help_text="Uses per customer (account, or email for guests); empty: no limit."
    )
    times_used = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(times_used__lte=F("usage_limit")),
                name="voucher_uses_within_limit",
            ),
            models.CheckConstraint(condition=Q(value__gte=0, minimum_spend__gte=0), name="voucher_amounts"),
            models.CheckConstraint(
                condition=~Q(kind="percentage") | Q(value__lte=100), name="voucher_percentage_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class VoucherUse(models.Model):
    """One order's use of a voucher, written in the transaction that creates the order. given_back_at: the order
    was cancelled (or expired unpaid) and the use no longer counts."""

    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="uses")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="voucher_use")
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    email = models.CharField(max_length=254, db_index=True, help_text="Normalised (trimmed, lower case).")
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="Goods and delivery discount.")
    created_at = models.DateTimeField(default=timezone.now)
    given_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.voucher_id} on {self.order_id}"


class Promotion(models.Model):
    """An automatic discount, without a code, on some categories or products, for a while."""

    name = models.CharField(max_length=100, help_text='What customers see, e.g. "Kitchen week: 10 % off".')
    kind = models.CharField(
        max_length=20, choices=[c for c in Discount.choices if c[0] != Discount.FREE_SHIPPING],
        default=Discount.PERCENTAGE,
    )  # fmt: skip
    value = models.DecimalField(max_digits=12, decimal_places=2)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    category_ids = models.JSONField(default=list, blank=True)
    product_ids = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=0), name="promotion_value"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="promotion_window"),
            models.CheckConstraint(
                condition=~Q(kind="percentage") | Q(value__lte=100), name="promotion_percentage_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.name
