"""The order state machine and orders' exceptions. Private to orders: services.py is its public face."""

from __future__ import annotations

from kernel.db import unique
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
    """Base of the exceptions orders raises."""


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


def transition(order: Order, to: str, actor: str, note: str = "", also: tuple[str, ...] = ()) -> None:
    """Validate and record a status change; `also` names other fields changed on the order, saved with it."""
    if to not in ALLOWED[Status(order.status)]:
        raise IllegalTransition(
            f"an order that is {order.get_status_display().lower()} cannot become {Status(to).label.lower()}"
        )
    StatusChange.objects.create(order=order, from_status=order.status, to_status=to, actor=actor, note=note[:300])
    order.status = to
    order.save(update_fields=["status", "updated_at", *also])


def locked(number: str) -> Order:
    order = unique(Order.objects.select_for_update().filter(number=number))
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
