"""recommendations learns from orders' events only. Each handler is idempotent by the order's ledger row (see
recommendations.ledger), so the bus keeps no record of them; they run on the "recommendations" queue."""

from __future__ import annotations

from kernel.bus import subscribe
from orders.events import OrderCancelled, OrderPaid, OrderRefunded
from recommendations import ledger

QUEUE = "recommendations"


@subscribe(OrderPaid, idempotent=True, queue=QUEUE)
def ledger_order_paid(event: OrderPaid) -> None:
    ledger.order_paid(order_id=event.order_id, user_id=event.user_id, product_ids=event.product_ids,
                      paid_at=event.occurred_at)  # fmt: skip


@subscribe(OrderCancelled, idempotent=True, queue=QUEUE)
def ledger_order_cancelled(event: OrderCancelled) -> None:
    ledger.order_void(order_id=event.order_id)


@subscribe(OrderRefunded, idempotent=True, queue=QUEUE)
def ledger_order_refunded(event: OrderRefunded) -> None:
    ledger.order_void(order_id=event.order_id)
