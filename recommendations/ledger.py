"""The purchase ledger, fed by orders' events only (never orders' tables).

OrderPaid brings the paid basket (customer, products) and makes it count; OrderCancelled and OrderRefunded void it
for good. Events may come in any order and more than once: each handler is keyed on the order id and moves the
order's LedgerOrder row by a state that a repeated or late event cannot undo (pending, then paid, then void; void
first stays void), under a row lock, so applying an event twice is applying it once. The Purchase rows of an order
exist exactly while it is paid and not void.

A paid order costs three statements here, on the worker: its row, inserted paid (ON CONFLICT DO NOTHING RETURNING:
an order seen before takes the locked path instead), its purchases and the counter of paid orders since the last
build; none is compiled by the ORM on each call (kernel.db.insert_rows).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from kernel.db import atomic, insert_rows
from recommendations.models import BuildState, LedgerOrder, Purchase

MODULE = "recommendations"


def customer_key(*, order_id: int, user_id: int | None) -> str:
    """A signed-in customer's purchases are one row of the matrix; a guest's order is a basket of its own."""
    return f"u{user_id}" if user_id else f"o{order_id}"


def _locked(order_id: int, alias: str) -> LedgerOrder:
    """The order's row, created pending if it is new (INSERT ... ON CONFLICT DO NOTHING: no savepoint, no race
    between two workers), then locked until the transaction ends."""
    LedgerOrder.objects.using(alias).bulk_create([LedgerOrder(order_id=order_id)], ignore_conflicts=True)
    return LedgerOrder.objects.using(alias).select_for_update().get(order_id=order_id)


def rebuild_due(*, paid_since_build: int, built_at: datetime | None, now: datetime | None = None) -> bool:
    """A rebuild is due after RECS_REBUILD_EVERY paid orders, but not sooner than RECS_REBUILD_MIN_SECONDS after
    the last build: a build reads the whole ledger, so under a rush of orders rebuilding every N orders would cost
    more and more as the ledger grows."""
    every = settings.RECS_REBUILD_EVERY
    if every <= 0 or paid_since_build < every:
        return False
    now = now or timezone.now()
    return built_at is None or (now - built_at).total_seconds() >= settings.RECS_REBUILD_MIN_SECONDS


def _can_return(connection) -> bool:
    """UPDATE ... RETURNING: PostgreSQL, and SQLite from 3.35 (what Django reports for INSERT ... RETURNING)."""
    return bool(connection.features.can_return_columns_from_insert)


def _count_paid(alias: str) -> int:
    """One more paid order since the last build; returns how many there are now: one statement once the row
    exists (UPDATE ... RETURNING on PostgreSQL and SQLite 3.35+; an UPDATE and a read on an older SQLite)."""
    connection = connections[alias]
    table = connection.ops.quote_name(BuildState._meta.db_table)  # the model's own name, not input
    sql = f"UPDATE {table} SET paid_since_build = paid_since_build + 1 WHERE id = 1"  # noqa: S608
    if _can_return(connection):
        with connection.cursor() as cursor:
            cursor.execute(sql + " RETURNING paid_since_build")
            row = cursor.fetchone()
        if row is not None:
            return int(row[0])
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            updated = cursor.rowcount
        if updated:
            return BuildState.objects.using(alias).values_list("paid_since_build", flat=True).get(pk=1)
    BuildState.objects.using(alias).get_or_create(pk=1)  # the first paid order of a new shop
    return _count_paid(alias)


def order_paid(
    *, order_id: int, user_id: int | None, product_ids: tuple[int, ...] | list[int], paid_at: datetime | None = None
) -> None:
    """A paid order's products count for the next build, once (not if the order was voided before this came)."""
    now = timezone.now()
    paid = {
        "order_id": order_id, "user_id": user_id, "customer_key": customer_key(order_id=order_id, user_id=user_id),
        "product_ids": sorted({int(p) for p in product_ids}), "status": LedgerOrder.Status.PAID,
        "paid_at": paid_at or now, "updated_at": now,
    }  # fmt: skip
    with atomic(module=MODULE) as alias:
        # The common case, an order not seen before, in one statement: its row inserted paid. A row that exists
        # (paid already, void for good, or pending from an older version) leaves the insert a no-op, and the
        # order takes the locked path. A void of the same order in flight makes the insert wait for its commit.
        inserted = _can_return(connections[alias]) and insert_rows(
            LedgerOrder, [paid], using=alias, ignore_conflicts=True, returning="id"
        )
        if not inserted:
            row = _locked(order_id, alias)
            if row.status != LedgerOrder.Status.PENDING:  # already paid, or void for good
                return
            for name in ("status", "user_id", "customer_key", "product_ids", "paid_at", "updated_at"):
                setattr(row, name, paid[name])
            row.save(using=alias, update_fields=["status", "user_id", "customer_key", "product_ids", "paid_at",
                                                 "updated_at"])  # fmt: skip
        if not paid["product_ids"]:  # an event stored before OrderPaid carried the basket: nothing to count
            return
        purchases = [
            {"order_id": order_id, "customer_key": paid["customer_key"], "user_id": user_id, "product_id": p,
             "paid_at": paid["paid_at"]}
            for p in paid["product_ids"]
        ]  # fmt: skip
        insert_rows(Purchase, purchases, using=alias, ignore_conflicts=True)
        paid_since_build = _count_paid(alias)
        if paid_since_build >= settings.RECS_REBUILD_EVERY > 0 and rebuild_due(
            paid_since_build=paid_since_build,
            built_at=BuildState.objects.using(alias).values_list("built_at", flat=True).get(pk=1),
        ):
            from recommendations.tasks import rebuild_if_due

            transaction.on_commit(rebuild_if_due.delay, using=alias)


def order_void(*, order_id: int) -> None:
    """Cancelled or refunded: the order's purchases stop counting (from the next build on), and stay out."""
    with atomic(module=MODULE) as alias:
        row = _locked(order_id, alias)
        if row.status == LedgerOrder.Status.VOID:
            return
        row.status = LedgerOrder.Status.VOID
        row.updated_at = timezone.now()
        row.save(using=alias)
        Purchase.objects.using(alias).filter(order_id=order_id).delete()
