"""The order state machine and orders' exceptions. Private to orders: services.py is its public face."""

from __future__ import annotations

from kernel.db import unique_by
from orders.models import Order, OrderLine, StatusChange

Status = Order.Status

# Once an order is being fulfilled, its status follows its lines (shipped, delivered, returned) and its refunds:
# any of these may follow another, as parcels, returns and refunds come in any order.
AFTER_PAYMENT = {
    Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.PARTIALLY_DELIVERED, Status.DELIVERED,
    Status.PARTIALLY_RETURNED, Status.RETURNED,
}  # fmt: skip
ALLOWED = {
    Status.PENDING_PAYMENT: {Status.PAID, Status.CANCELLED},
    Status.PAID: {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.CANCELLED},
    Status.FULFILLING: {Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.CANCELLED},
    **{
        status: (AFTER_PAYMENT - {Status.FULFILLING, status}) | {Status.REFUNDED}
        for status in AFTER_PAYMENT - {Status.FULFILLING}
    },
    Status.CANCELLED: set(),
    Status.REFUNDED: set(),
}
CANCELLABLE = {Status.PENDING_PAYMENT, Status.PAID, Status.FULFILLING}
SHIPPING = {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.PARTIALLY_DELIVERED, Status.DELIVERED}


class OrderError(Exception):
    """Base of the exceptions orders raises.

    `field` names the argument at fault when the request itself is wrong, whatever the order's state (a line the
    order does not have, more than it ever held); it is None when the order's state refuses it (shipped already,
    nothing left to refund). The API answers 400 naming the field for the first, 409 for the second."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class OrderNotFound(OrderError):
    pass


class IllegalTransition(OrderError):
    pass


class EmptyBasket(OrderError):
    pass


class UnavailableItem(OrderError):
    """A line's product is no longer on sale."""


class ShipmentError(OrderError):
    """A shipment cannot be made or moved as asked (nothing left to ship, an unknown line, ...)."""


class ShipmentNotFound(ShipmentError):
    """The order has no parcel of that number."""


def transition(order: Order, to: str, actor: str, note: str = "", also: tuple[str, ...] = ()) -> None:
    """Validate and record a status change; `also` names other fields changed on the order, saved with it."""
    if to not in ALLOWED[Status(order.status)]:
        raise IllegalTransition(
            f"an order that is {order.get_status_display().lower()} cannot become {Status(to).label.lower()}"
        )
    StatusChange.objects.create(order=order, from_status=order.status, to_status=to, actor=actor, note=note[:300])
    order.status = to
    order.save(update_fields=["status", "updated_at", *also])


def touch(order: Order) -> None:
    """Record that the order changed (its parcels, returns or figures) when its status did not: updated_at is what
    an integrator syncing by `updated_since` reads."""
    order.save(update_fields=["updated_at"])


def locked(number: str) -> Order:
    order = unique_by(Order, number=number, for_update=True)
    if order is None:
        raise OrderNotFound(number)
    return order


def shipping_status(lines: list[OrderLine], current: str) -> str:
    """What an order being fulfilled is, from its lines' shipped, delivered and returned quantities."""
    ordered = sum(line.quantity for line in lines)
    shipped = sum(line.quantity_shipped for line in lines)
    delivered = sum(line.quantity_delivered for line in lines)
    returned = sum(line.quantity_returned for line in lines)
    if returned == ordered:
        return Status.RETURNED
    if returned:
        return Status.PARTIALLY_RETURNED
    if delivered == ordered:
        return Status.DELIVERED
    if delivered:
        return Status.PARTIALLY_DELIVERED
    if shipped == ordered:
        return Status.SHIPPED
    if shipped:
        return Status.PARTIALLY_SHIPPED
    return current
