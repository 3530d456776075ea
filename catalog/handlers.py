"""What catalog does when another module asks (commands of the purchase saga). Each runs in catalog's own
transaction, after the requester's committed, and is idempotent by the reservation's key."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings

from catalog import stock
from catalog.data import OutOfStock, ReservationNotFound
from catalog.events import CommitReservation, ReleaseReservation, ReservationFailed
from kernel.bus import INLINE, publish, subscribe
from kernel.db import atomic

logger = logging.getLogger(__name__)


def _retake_key(key: str) -> str:
    return f"{key}:again"


# Inline: the paid order's stock is sold in the process that learned of the payment, right after orders' commit,
# as the customer comes back from the gateway. The outbox still has the request if this process dies first.
@subscribe(CommitReservation, mode=INLINE, idempotent=True)
def commit_reservation(command: CommitReservation) -> None:
    """Sell the held stock. A hold that lapsed while the customer paid is taken again under a key of its own;
    if the goods are gone meanwhile, answer ReservationFailed (orders cancels and gives the money back)."""
    sold = stock.stock_commit(key=command.key)
    if sold.status == stock.ReservationStatus.COMMITTED:
        return
    try:
        again = stock.stock_reserve(
            key=_retake_key(command.key),
            lines=[(line.variant_id, line.quantity) for line in sold.lines],
            ttl_seconds=settings.SHOP_RESERVATION_MINUTES * 60,
        )
        stock.stock_commit(key=again.key)
    except OutOfStock as exc:
        logger.warning("reservation %s lapsed and its stock is gone: %s", command.key, exc)
        with atomic(module="catalog"):
            publish(ReservationFailed(key=command.key, reference=command.reference, reason="sold_out"))


@subscribe(ReleaseReservation, mode=INLINE, idempotent=True)
def release_reservation(command: ReleaseReservation) -> None:
    """Free what is held, put back on hand what was sold (the original hold, and one taken again)."""
    for key in (command.key, _retake_key(command.key)):
        with contextlib.suppress(ReservationNotFound):
            stock.stock_restock(key=key)
