"""What webhooks does with the other modules' events: a message for each active endpoint that wants it.

Every subscriber is async, on the webhooks queue, and idempotent by itself: a message is unique per (event,
endpoint), so a second delivery of the same event makes nothing new. The snapshot in the payload is read through
the other module's services when the event is handled, before webhooks' own transaction opens.
"""

from __future__ import annotations

from catalog.events import ProductChanged, StockChanged
from kernel.bus import INLINE, subscribe
from kernel.celery import WEBHOOKS
from kernel.events import DomainEvent
from orders.events import (
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    ReturnReceived,
)
from webhooks import delivery, payloads
from webhooks.models import Endpoint


def endpoints_for(event_type: str) -> list[int]:
    """The active endpoints that receive this type (an empty list of types: every type)."""
    rows = Endpoint.objects.filter(is_active=True).values_list("pk", "event_types")
    return [pk for pk, types in rows if not types or event_type in types]


def fan_out(event_type: str, event: DomainEvent) -> list[int]:
    """Make the messages of one event; their delivery tasks are sent once they are committed."""
    endpoint_ids = endpoints_for(event_type)
    if not endpoint_ids:
        return []
    payload = payloads.payload_for(event_type, event)
    return delivery.messages_create(event_type=event_type, source_event_id=event.event_id, payload=payload,
                                    endpoint_ids=endpoint_ids)  # fmt: skip


# One subscriber per webhook event type (the consumer key names it: webhooks.order_paid).


@subscribe(OrderPlaced, idempotent=True, queue=WEBHOOKS)
def order_created(event: OrderPlaced) -> None:
    fan_out("order.created", event)


@subscribe(OrderPaid, idempotent=True, queue=WEBHOOKS)
def order_paid(event: OrderPaid) -> None:
    fan_out("order.paid", event)


@subscribe(OrderShipped, idempotent=True, queue=WEBHOOKS)
def order_shipped(event: OrderShipped) -> None:
    fan_out("order.shipped", event)


@subscribe(OrderDelivered, idempotent=True, queue=WEBHOOKS)
def order_delivered(event: OrderDelivered) -> None:
    fan_out("order.delivered", event)


@subscribe(OrderCancelled, idempotent=True, queue=WEBHOOKS)
def order_cancelled(event: OrderCancelled) -> None:
    fan_out("order.cancelled", event)


@subscribe(OrderRefunded, idempotent=True, queue=WEBHOOKS)
def order_refunded(event: OrderRefunded) -> None:
    fan_out("order.refunded", event)


@subscribe(ReturnReceived, idempotent=True, queue=WEBHOOKS)
def return_received(event: ReturnReceived) -> None:
    fan_out("return.received", event)


@subscribe(StockChanged, mode=INLINE, idempotent=True, queue=WEBHOOKS)
def stock_low(event: StockChanged) -> None:
    """Only when the stock crosses the threshold downwards: once, not again while it stays at or below it.

    Inline: every sale changes stock, and the check is arithmetic on the event, so it runs in the process that
    sold rather than costing a task per sale; only a crossing (rare) reads and writes anything. If that fails,
    the delivery stays pending and the outbox sweep runs it again."""
    if payloads.stock_crossed_low(event):
        fan_out("stock.low", event)


@subscribe(ProductChanged, idempotent=True, queue=WEBHOOKS)
def product_updated(event: ProductChanged) -> None:
    fan_out("product.updated", event)
