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


class InfoPage(models.Model):
    """A page of the shop's information (delivery, returns, terms, privacy, contact), written by staff in the admin
    and shown at /pages/<slug>/ in the shop's layout. The shop's own equivalent of django.contrib.flatpages, which
    would need django.contrib.sites (and so a Site row's domain for password-reset links and the sitemap)."""

    slug = models.SlugField(
        max_length=60, unique=True, help_text="The page's address: /pages/<slug>/. Lowercase letters, digits, hyphens."
    )
    title = models.CharField(max_length=120)
    content = models.TextField(
        help_text=(
            "HTML, shown as written: it is trusted staff input and is not cleaned, so paste only markup you trust "
            "(no scripts from elsewhere). These placeholders are filled in when the page is shown, from the shop's "
            "settings: {shop_name}, {contact_email}, {shipping_methods} (a table of the delivery methods and "
            "prices), {free_delivery_above}, {return_days}, {vat_rate}, {prices_vat} (“include” or “exclude”)."
        )
    )
    summary = models.CharField(
        max_length=200, blank=True, help_text="One sentence for search engines (the page's meta description)."
    )
    is_published = models.BooleanField(default=True, help_text="Unpublished pages answer 404 and leave the sitemap.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title
