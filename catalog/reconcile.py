"""Reconciling reserved stock: each stock row's reserved count against the lines of its held reservations.

They move together (catalog.stock changes both in one transaction), so a difference means a bug or a hand edit.
This reports it; it does not fix it (which figure is right is for staff to find out). Private to catalog: run by
the periodic task catalog.reconcile_reservations and by `manage.py stock_reconcile`.
"""

from __future__ import annotations

import dataclasses
import logging

from django.db.models import F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from catalog.models import Reservation, ReservationLine, StockItem

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StockDifference:
    variant_id: int
    sku: str
    reserved: int  # StockItem.reserved
    held: int  # the sum of the variant's lines in held reservations

    def as_dict(self) -> dict[str, int | str]:
        return dataclasses.asdict(self)


def reservations_reconcile() -> list[StockDifference]:
    """Every variant whose reserved stock differs from what its held reservations hold, in variant order; each is
    logged at ERROR. Empty when the shop is consistent.

    The stock rows are compared in one statement, so it sees one snapshot: a reservation made or settled while it
    runs (both figures change in one transaction) is never reported.
    """
    held_lines = ReservationLine.objects.filter(reservation__status=Reservation.Status.HELD)
    held = (
        held_lines.filter(variant_id=OuterRef("variant_id"))
        .order_by()
        .values("variant_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    rows = (
        StockItem.objects.annotate(held=Coalesce(Subquery(held, output_field=IntegerField()), Value(0)))
        .exclude(reserved=F("held"))
        .order_by("variant_id")
        .values_list("variant_id", "variant__sku", "reserved", "held")
    )
    differences = [StockDifference(*row) for row in rows]
    # Held lines of a variant with no stock row at all (nothing reserved there).
    orphans = (
        held_lines.filter(variant__stock__isnull=True)
        .order_by()
        .values("variant_id", "variant__sku")
        .annotate(total=Sum("quantity"))
        .values_list("variant_id", "variant__sku", "total")
    )
    differences += [StockDifference(variant_id, sku, 0, total) for variant_id, sku, total in orphans]
    differences.sort(key=lambda difference: difference.variant_id)
    for d in differences:
        logger.error(
            "reserved stock of variant %s (SKU %s) is %s, but its held reservations hold %s",
            d.variant_id, d.sku, d.reserved, d.held,
        )  # fmt: skip
    return differences
