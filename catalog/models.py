"""Catalog data. Private to catalog: other modules go through catalog.services.

Listing pages read only Product: the fields after "denormalised for listings" are kept up to date by
catalog.projection (refresh_products) whenever variants, prices, stock or images change, so a page of 12 or 48
products is one query whatever it shows.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Brand(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=140, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """A node of the category tree (any depth)."""

    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.PROTECT)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"
        constraints = [models.CheckConstraint(condition=~Q(parent=F("id")), name="category_not_own_parent")]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    description = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text='Shown as a table, e.g. {"Material": "Cotton"}.')
    is_active = models.BooleanField(default=True)
    is_featured = models.BooleanField(default=False)
    popularity = models.PositiveIntegerField(default=0, help_text="Higher sorts first under 'Relevance'.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Also set by refresh_products (edits, prices, going in or out of stock); a hold or a sale leaves it (an update()
    # does not apply auto_now): the stock row's own updated_at tracks those.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    published_at = models.DateTimeField(default=timezone.now, db_index=True)

    # ---- denormalised for listings (catalog.projection.refresh_products keeps them right)
    brand_name = models.CharField(max_length=120, blank=True, editable=False)
    currency = models.CharField(max_length=3, default="EUR", editable=False)
    min_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, editable=False)
    max_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, editable=False)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, editable=False)
    in_stock = models.BooleanField(default=False, editable=False)
    listing_image = models.CharField(max_length=300, blank=True, editable=False)
    listing_image_alt = models.CharField(max_length=200, blank=True, editable=False)
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-popularity", "id"]
        indexes = [
            models.Index(fields=["category", "is_active", "-popularity"], name="product_cat_pop_idx"),
            models.Index(fields=["category", "is_active", "min_price"], name="product_cat_price_idx"),
            models.Index(fields=["is_active", "-published_at"], name="product_new_idx"),
            models.Index(
                fields=["-popularity"], condition=Q(is_featured=True, is_active=True), name="product_featured_idx"
            ),
            # PostgreSQL also gets GIN indexes on search_vector and on title trigrams (migration 0002); SQLite an
            # FTS5 trigram table, catalog_product_fts (migration 0008), that refresh_products keeps in step.
        ]

    def __str__(self) -> str:
        return self.title


class Variant(models.Model):
    """What is actually sold: one SKU, one price, one stock level."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField("SKU", max_length=64, unique=True)
    options = models.JSONField(default=dict, blank=True, help_text='e.g. {"Size": "M", "Colour": "Navy"}')
    price = models.DecimalField(max_digits=12, decimal_places=2)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    weight_grams = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # ---- denormalised (catalog.projection.refresh_products): the listing rendition of the picture of this
    # variant's colour, or of the product's first picture; the cart and the orders show it.
    listing_image = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="variant_price_not_negative"),
            models.CheckConstraint(
                condition=Q(compare_at_price__isnull=True) | Q(compare_at_price__gte=F("price")),
                name="variant_compare_at_not_below_price",
            ),
        ]

    def __str__(self) -> str:
        return self.sku


class StockItem(models.Model):
    """Stock of one variant. available = on_hand - reserved; the database refuses anything below zero."""

    variant = models.OneToOneField(Variant, on_delete=models.CASCADE, related_name="stock", primary_key=True)
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    # Every stock service sets it in its UPDATE (queryset.update() and raw SQL do not apply auto_now).
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class ProductOptionValue(models.Model):
    """One option value some active variant of a product has (Colour=Navy): the facet filters read this."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="option_values")
    key = models.SlugField(max_length=60, help_text="The option name as it appears in filter URLs: 'colour'.")
    name = models.CharField(max_length=60)
    value = models.CharField(max_length=120)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "key", "value"], name="product_option_once")]
        indexes = [models.Index(fields=["key", "value", "product"], name="option_key_value_idx")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


def product_image_path(instance: ProductImage, filename: str) -> str:
    return f"products/{instance.product_id}/{filename}"


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to=product_image_path, max_length=300)
    # Renditions made by catalog.images: 'listing' for product cards, 'large' for the product page.
    listing = models.CharField(max_length=300, blank=True, editable=False)
    large = models.CharField(max_length=300, blank=True, editable=False)
    alt_text = models.CharField(max_length=200, help_text="What the picture shows, for people who cannot see it.")
    colour = models.CharField(
        max_length=120,
        blank=True,
        help_text="The colour this picture shows, as the variants' Colour option spells it (Navy). "
        "Blank: it shows every colour (a detail, the packaging).",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.alt_text


class Reservation(models.Model):
    """Stock held for an order in progress. Held until committed (sold), released (the order will not happen), or
    expired (its time ran out; the order may still be paid, and then takes the stock again if it is there)."""

    class Status(models.TextChoices):
        HELD = "held", "Held"
        COMMITTED = "committed", "Sold"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"  # its time ran out unpaid: the stock is free, a late payment may retake it

    key = models.CharField(max_length=255, unique=True, help_text="The caller's idempotency key (one per order).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], condition=Q(status="held"), name="reservation_held_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="reservation_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id}"


class StockReturn(models.Model):
    """Goods back on hand from a customer's return, once per key: a second delivery of the request finds it."""

    key = models.CharField(max_length=255, unique=True, help_text="The requester's key (order and return).")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key
