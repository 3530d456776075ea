"""The webhook event types and the body of each: {"type", "timestamp", "data"} (Standard Webhooks' payload
structure), plain JSON (Decimals and datetimes as strings).

"timestamp" is when the domain event happened, not when the message was sent. "data" carries the resource's ids
(order_id and number, product_id, variant_id) and a snapshot of the resource read through its module's public
services when webhooks handled the event, which may be a little later than the event: an order.created handled
after the payment already shows the order paid. Messages are not guaranteed to arrive in order (each is retried
on its own); a receiver orders them by data's resource id and timestamp.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings

from catalog import services as catalog
from catalog.events import ProductChanged, StockChanged
from kernel.events import DomainEvent
from orders import services as orders
from orders.events import (
    OrderCancelled,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderShipped,
    ReturnReceived,
)

TEST = "webhook.test"

# The webhook event type of each domain event it is made from.
SOURCES: dict[str, type[DomainEvent]] = {
    "order.created": OrderPlaced,
    "order.paid": OrderPaid,
    "order.shipped": OrderShipped,
    "order.delivered": OrderDelivered,
    "order.cancelled": OrderCancelled,
    "order.refunded": OrderRefunded,
    "return.received": ReturnReceived,
    "stock.low": StockChanged,  # only when the available stock falls to the threshold or below it (stock_crossed_low)
    "product.updated": ProductChanged,
}
EVENT_TYPES: tuple[str, ...] = tuple(SOURCES)  # what an endpoint may subscribe to; webhook.test goes to one only


def jsonable(value: Any) -> Any:
    """A value as plain JSON: dataclasses as objects, Decimals, UUIDs and dates as strings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} in a webhook payload")


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z: 2026-12-01T10:58:57.123456Z."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def envelope(event_type: str, timestamp: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso(timestamp), "data": jsonable(data)}


# ---------------------------------------------------------------- snapshots

# What a receiver gets of an order: named one by one, so a field added to OrderInfo (the guest's access token is
# one already) is not sent to integrators until someone decides it should be.
ORDER_FIELDS = ("id", "number", "status", "user_id", "email", "currency", "subtotal", "shipping", "tax", "total",
                "prices_include_tax", "shipping_method", "shipping_address", "payment_id", "amount_refunded",
                "created_at", "lines", "shipments", "returns", "discount", "promotion_name", "promotion_discount",
                "voucher_code", "voucher_discount", "shipping_discount")  # fmt: skip


def order_snapshot(number: str) -> dict[str, Any]:
    order = orders.order_find(number=number, history=False)
    return {name: jsonable(getattr(order, name)) for name in ORDER_FIELDS}


def _order_data(event: Any) -> dict[str, Any]:
    return {"order_id": event.order_id, "number": event.number, "order": order_snapshot(event.number)}


def _cancelled_data(event: OrderCancelled) -> dict[str, Any]:
    return {**_order_data(event), "reason": event.reason}


def _return_data(event: ReturnReceived) -> dict[str, Any]:
    order = order_snapshot(event.number)
    ret = next((r for r in order["returns"] if r["number"] == event.ret), None)
    return {"order_id": event.order_id, "number": event.number, "return_number": event.ret,
            "restocked": event.restocked, "return": ret, "order": order}  # fmt: skip


def _stock_data(event: StockChanged) -> dict[str, Any]:
    variant = catalog.variants_get(variant_ids=[event.variant_id]).get(event.variant_id)
    return {
        "variant_id": event.variant_id,
        "sku": event.sku,
        "product_id": event.product_id,
        "product_slug": event.product_slug,
        "available": event.available,  # as the event said: the variant snapshot below may be later
        "available_before": event.available_before,
        "threshold": settings.WEBHOOKS_STOCK_LOW_THRESHOLD,
        "variant": jsonable(variant) if variant else None,  # None: no longer on sale
    }


def _product_data(event: ProductChanged) -> dict[str, Any]:
    try:
        product = jsonable(catalog.product_detail(slug=event.slug))
    except catalog.ProductNotFound:  # taken off sale (or its slug changed since)
        product = None
    return {"product_id": event.product_id, "slug": event.slug, "product": product}


BUILDERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "order.created": _order_data,
    "order.paid": _order_data,
    "order.shipped": _order_data,
    "order.delivered": _order_data,
    "order.cancelled": _cancelled_data,
    "order.refunded": _order_data,
    "return.received": _return_data,
    "stock.low": _stock_data,
    "product.updated": _product_data,
}


def payload_for(event_type: str, event: DomainEvent) -> dict[str, Any]:
    """The body of the message of `event_type` made from `event`, its snapshot read now."""
    return envelope(event_type, event.occurred_at, BUILDERS[event_type](event))


def stock_crossed_low(event: StockChanged) -> bool:
    """The available stock fell to the threshold or below it from above it (an unknown level before counts)."""
    threshold = settings.WEBHOOKS_STOCK_LOW_THRESHOLD
    return event.available <= threshold and (event.available_before is None or event.available_before > threshold)


def ping_payload(endpoint_id: int, now: dt.datetime) -> dict[str, Any]:
    return envelope(TEST, now, {"endpoint_id": endpoint_id, "message": "A test message from the shop."})
