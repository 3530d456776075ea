"""The persistent cart of signed-in customers (visitors' carts live in their session)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

MAX_LINE_QUANTITY = 99


class CartLine(models.Model):
    """One variant in a customer's cart. The variant is catalog's and the customer is accounts': both are kept by
    id, never by foreign key. A deleted account's lines are removed on accounts.user.deleted.v1 (shop.handlers)."""

    user_id = models.BigIntegerField(db_index=True)
    variant_id = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField()
    price_seen = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="The unit price the customer last saw, to flag changes."
    )
    added_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "variant_id"], name="cart_line_once_per_variant"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1, quantity__lte=MAX_LINE_QUANTITY), name="cart_line_quantity_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x variant {self.variant_id}"
