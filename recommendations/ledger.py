"""The purchase ledger, fed by orders' events only (never orders' tables).

OrderPlaced brings the basket (user, products), OrderPaid makes it count, OrderCancelled and OrderRefunded void it
for good. Events may come in any order and more than once: each handler is keyed on the order id and moves the
order's LedgerOrder row by a state that a repeated or late event cannot undo, under a row lock, so applying an
event twice is applying it once. The Purchase rows of an order exist exactly while it is placed, paid and not void.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from kernel.db import atomic
from recommendations.models import BuildState, LedgerOrder, Purchase

MODULE = "recommendations"


def customer_key(*, order_id: int, user_id: int | None) -> str:
    """A signed-in customer's purchases are one row of the matrix; a guest's order is a basket of its own."""
    return f"u{user_id}" if user_id else f"o{order_id}"


def _locked(order_id: int, alias: str) -> LedgerOrder:
    try:
        with transaction.atomic(using=alias):
            LedgerOrder.objects.using(alias).get_or_create(order_id=order_id)
    except IntegrityError:  # another worker created it between our read and our insert
        pass
    return LedgerOrder.objects.using(alias).select_for_update().get(order_id=order_id)


def _count(row: LedgerOrder, alias: str) -> bool:
    """Write the Purchase rows of a placed, paid order; True if the order now counts for the first time."""
    if not (row.placed and row.status == LedgerOrder.Status.PAID):
        return False
    if Purchase.objects.using(alias).filter(order_id=row.order_id).exists():
        return False
    Purchase.objects.using(alias).bulk_create(
        [
            Purchase(
                order_id=row.order_id,
                customer_key=row.customer_key,
                user_id=row.user_id,
                product_id=product_id,
                paid_at=row.paid_at or timezone.now(),
            )
            for product_id in sorted(set(row.product_ids))
        ]
    )
    state, _ = BuildState.objects.using(alias).get_or_create(pk=1)
    BuildState.objects.using(alias).filter(pk=state.pk).update(paid_since_build=F("paid_since_build") + 1)
    return True


def _maybe_rebuild(alias: str) -> None:
    every = settings.RECS_REBUILD_EVERY
    if every <= 0:
        return
    due = BuildState.objects.using(alias).filter(pk=1, paid_since_build__gte=every).exists()
    if due:
        from recommendations.tasks import rebuild_if_due

        transaction.on_commit(rebuild_if_due.delay, using=alias)


def order_placed(*, order_id: int, user_id: int | None, product_ids: tuple[int, ...] | list[int]) -> None:
    with atomic(module=MODULE) as alias:
        row = _locked(order_id, alias)
        if row.placed:
            return
        row.placed = True
        row.user_id = user_id
        row.customer_key = customer_key(order_id=order_id, user_id=user_id)
        row.product_ids = sorted({int(p) for p in product_ids})
        row.updated_at = timezone.now()
        row.save(using=alias)
        if _count(row, alias):
            _maybe_rebuild(alias)


def order_paid(*, order_id: int, paid_at: datetime | None = None) -> None:
    with atomic(module=MODULE) as alias:
        row = _locked(order_id, alias)
        if row.status != LedgerOrder.Status.PENDING:  # already paid, or void for good
            return
        row.status = LedgerOrder.Status.PAID
        row.paid_at = paid_at or timezone.now()
        row.updated_at = timezone.now()
        row.save(using=alias)
        if _count(row, alias):
            _maybe_rebuild(alias)


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
