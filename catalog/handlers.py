"""What catalog does when another module asks (commands of the purchase saga). Each runs in catalog's own
transaction, after the requester's committed, and is idempotent by the reservation's key."""

from __future__ import annotations

import contextlib
import logging

from catalog import stock
from catalog.data import OutOfStock, ReservationNotFound
from catalog.events import CommitReservation, ReleaseReservation, ReservationFailed, ReturnToStock
from kernel.bus import INLINE, publish, subscribe
from kernel.db import atomic

logger = logging.getLogger(__name__)


# Inline: the paid order's stock is sold in the process that learned of the payment, right after orders' commit,
# as the customer comes back from the gateway. The outbox still has the request if this process dies first.
@subscribe(CommitReservation, mode=INLINE, idempotent=True)
def commit_reservation(command: CommitReservation) -> None:
    """Sell the reserved stock (taken again if the hold lapsed while the customer paid). If the goods are gone
    meanwhile, answer ReservationFailed: orders cancels the order and gives the money back."""
    try:
        sold = stock.stock_sell(key=command.key)
    except OutOfStock as exc:
        logger.warning("reservation %s lapsed and its stock is gone: %s", command.key, exc)
        with atomic(module="catalog"):
            publish(ReservationFailed(key=command.key, reference=command.reference, reason="sold_out"))
        return
    if sold.status != stock.ReservationStatus.COMMITTED:  # released: the order was cancelled before this arrived
        logger.info("reservation %s is %s: nothing to sell", command.key, sold.status)


@subscribe(ReleaseReservation, mode=INLINE, idempotent=True)
def release_reservation(command: ReleaseReservation) -> None:
    """Free what is held, put back on hand what was sold; a lapsed hold is closed so nothing can retake it."""
    with contextlib.suppress(ReservationNotFound):
        stock.stock_restock(key=command.key)


@subscribe(ReturnToStock, mode=INLINE, idempotent=True)
def return_to_stock(command: ReturnToStock) -> None:
    """Returned goods go back to sale stock, once per key (its record is written with the stock change)."""
    stock.stock_return(key=command.key, lines=command.lines)
