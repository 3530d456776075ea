"""Domain events of orders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(DomainEvent):
    name: ClassVar[str] = "orders.order.placed.v1"
    order_id: int
    number: str
    user_id: int | None
    total: Decimal
    currency: str
    product_ids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class OrderPaid(DomainEvent):
    """The order is paid. It carries the customer and the products, as OrderPlaced does, so that a consumer that
    needs the basket of paid orders (recommendations' ledger) has it from this one event. Events stored before
    these fields existed decode with user_id None and no products."""

    name: ClassVar[str] = "orders.order.paid.v1"
    order_id: int
    number: str
    user_id: int | None = None
    product_ids: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(DomainEvent):
    name: ClassVar[str] = "orders.order.cancelled.v1"
    order_id: int
    number: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderShipped(DomainEvent):
    name: ClassVar[str] = "orders.order.shipped.v1"
    order_id: int
    number: str


@dataclass(frozen=True, kw_only=True)
class OrderDelivered(DomainEvent):
    name: ClassVar[str] = "orders.order.delivered.v1"
    order_id: int
    number: str


@dataclass(frozen=True, kw_only=True)
class OrderRefunded(DomainEvent):
    name: ClassVar[str] = "orders.order.refunded.v1"
    order_id: int
    number: str


@dataclass(frozen=True, kw_only=True)
class OrderPaymentFailed(DomainEvent):
    """The payment of one attempt at paying the order failed; the order still awaits payment ("Pay again")."""

    name: ClassVar[str] = "orders.order.payment_failed.v1"
    order_id: int
    number: str
    attempt: int
    message: str  # why, in the customer's words


@dataclass(frozen=True, kw_only=True)
class OrderRefundIssued(DomainEvent):
    """Money of the order goes back to the customer: `amount` now, `total_refunded` in all (each refund raises it,
    so it names the refund). `ret` is the return it refunds (0: none, a goodwill or full refund, or one made in
    payments)."""

    name: ClassVar[str] = "orders.order.refund_issued.v1"
    order_id: int
    number: str
    amount: Decimal
    total_refunded: Decimal
    currency: str
    ret: int = 0


@dataclass(frozen=True, kw_only=True)
class ShipmentShipped(DomainEvent):
    """A parcel of the order left with its carrier."""

    name: ClassVar[str] = "orders.shipment.shipped.v1"
    order_id: int
    number: str
    shipment: int
    carrier: str
    tracking_number: str
    tracking_url: str


@dataclass(frozen=True, kw_only=True)
class ShipmentDelivered(DomainEvent):
    name: ClassVar[str] = "orders.shipment.delivered.v1"
    order_id: int
    number: str
    shipment: int


@dataclass(frozen=True, kw_only=True)
class ReturnRequested(DomainEvent):
    name: ClassVar[str] = "orders.return.requested.v1"
    order_id: int
    number: str
    ret: int


@dataclass(frozen=True, kw_only=True)
class ReturnReceived(DomainEvent):
    """Staff received a customer's return; `restocked` units went back to sale stock."""

    name: ClassVar[str] = "orders.return.received.v1"
    order_id: int
    number: str
    ret: int
    restocked: int
