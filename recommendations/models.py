"""recommendations' tables: the purchase ledger fed by orders' events, and what the build writes from it.

No foreign key leaves the module: products, users and orders are plain ids (their modules may live on other
databases). Every table routes to the "recommendations" alias (kernel.db.ModuleRouter).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class LedgerOrder(models.Model):
    """What recommendations knows of one order, from orders' events (which may arrive in any order): whether it
    was paid (OrderPaid, with its basket) and whether it was cancelled or refunded since (then void for good). Its
    lines count (Purchase rows) only while it is paid and not void."""

    class Status(models.TextChoices):
        PENDING = "pending", "Placed, not paid"
        PAID = "paid", "Paid"
        VOID = "void", "Cancelled or refunded"

    order_id = models.BigIntegerField(unique=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    customer_key = models.CharField(
        max_length=40, blank=True, help_text='"u<user id>" for a customer, "o<order id>" for a guest\'s basket.'
    )
    product_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.status})"


class Purchase(models.Model):
    """One product of one paid, not cancelled order: the rows the build reads."""

    order_id = models.BigIntegerField()
    customer_key = models.CharField(max_length=40)
    user_id = models.BigIntegerField(null=True, blank=True)
    product_id = models.BigIntegerField()
    paid_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order_id", "product_id"], name="recs_purchase_once")]
        indexes = [models.Index(fields=["user_id", "-paid_at"], name="recs_purchase_user_idx")]

    def __str__(self) -> str:
        return f"order {self.order_id}: product {self.product_id}"


class Related(models.Model):
    """product's rank-th most related product (rank 1 the best), and its score; written by the build, a full
    swap in one transaction."""

    product_id = models.BigIntegerField()
    related_id = models.BigIntegerField()
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["product_id", "rank"]
        constraints = [models.UniqueConstraint(fields=["product_id", "rank"], name="recs_related_rank")]

    def __str__(self) -> str:
        return f"{self.product_id} -> {self.related_id} (#{self.rank})"


class BestSeller(models.Model):
    """The cold start: the shop's best sellers (category_id 0) and each category's (a product counts in its own
    category and every one above it), by number of customers who bought it; written by the build."""

    WHOLE_SHOP = 0

    category_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    buyers = models.PositiveIntegerField()
    rank = models.PositiveIntegerField()

    class Meta:
        ordering = ["category_id", "rank"]
        constraints = [models.UniqueConstraint(fields=["category_id", "rank"], name="recs_bestseller_rank")]

    def __str__(self) -> str:
        return f"category {self.category_id}: #{self.rank} product {self.product_id}"


class BuildState(models.Model):
    """One row: the paid orders counted since the last build (a rebuild is due after RECS_REBUILD_EVERY), and the
    last build's report."""

    paid_since_build = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)
    products = models.PositiveIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    peak_memory_bytes = models.BigIntegerField(default=0)
    method = models.CharField(max_length=20, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A build runs until then (or died: the lease lapses); others skip."
    )

    def __str__(self) -> str:
        return f"built {self.built_at}: {self.pairs} pairs, {self.paid_since_build} paid orders since"


# ---- recently viewed (recsslots): what a signed-in customer looked at, latest first. Visitors' views stay in the
# shop's session; these rows keep a customer's across devices and sign-ins.
class RecentlyViewed(models.Model):
    user_id = models.BigIntegerField()  # accounts' user id, a value (no ForeignKey across modules)
    product_id = models.BigIntegerField()  # catalog's product id, a value
    viewed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "product_id"], name="recently_viewed_once")]
        indexes = [models.Index(fields=["user_id", "-viewed_at"], name="recently_viewed_latest_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} viewed product {self.product_id}"
