"""Public face of orders: pricing a basket, placing orders, their lifecycle, and what customers may see.

Statuses: pending_payment -> paid -> fulfilling -> shipped -> delivered, plus cancelled and refunded. Every change
goes through order_transition, which refuses an illegal one (IllegalTransition) and writes the status history with
who and when. Orders react to payments' events (orders.handlers) and ask catalog to sell or release stock and
payments to capture, void or refund.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.services import ReservationNotFound, stock_commit, stock_reserve, stock_restock, variants_get
from kernel.bus import publish
from kernel.db import unique
from orders.events import OrderCancelled, OrderPaid, OrderPlaced, OrderShipped
from orders.models import Order, OrderLine, StatusChange
from payments.services import PaymentError, payment_capture, payment_get, payment_refund, payment_void

logger = logging.getLogger(__name__)
Status = Order.Status
CENT = Decimal("0.01")
NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read out on the phone

ALLOWED = {
    Status.PENDING_PAYMENT: {Status.PAID, Status.CANCELLED},
    Status.PAID: {Status.FULFILLING, Status.SHIPPED, Status.CANCELLED, Status.REFUNDED},
    Status.FULFILLING: {Status.SHIPPED, Status.CANCELLED, Status.REFUNDED},
    Status.SHIPPED: {Status.DELIVERED, Status.REFUNDED},
    Status.DELIVERED: {Status.REFUNDED},
    Status.CANCELLED: set(),
    Status.REFUNDED: set(),
}
CANCELLABLE = {Status.PENDING_PAYMENT, Status.PAID, Status.FULFILLING}


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


# ---------------------------------------------------------------- pricing


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    name: str
    price: Decimal
    days: str


def shipping_methods(*, subtotal: Decimal) -> tuple[ShippingMethod, ...]:
    """Standard and express; standard is free above SHOP_FREE_SHIPPING_ABOVE."""
    free = subtotal >= Decimal(settings.SHOP_FREE_SHIPPING_ABOVE)
    return (
        ShippingMethod("standard", "Standard delivery", Decimal(0) if free else Decimal("4.90"), "3-5 working days"),
        ShippingMethod("express", "Express delivery", Decimal("9.90"), "next working day"),
    )


@dataclass(frozen=True)
class QuoteLine:
    variant_id: int
    product_id: int
    sku: str
    name: str
    variant_label: str
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]
    currency: str
    subtotal: Decimal
    shipping: ShippingMethod
    tax: Decimal
    total: Decimal
    prices_include_tax: bool
    tax_rate: Decimal


def order_quote(*, lines: list[tuple[int, int]], shipping_method: str = "standard") -> Quote:
    """Price a basket of (variant_id, quantity) with fresh catalog prices. Raises EmptyBasket, UnavailableItem."""
    if not lines:
        raise EmptyBasket("the basket is empty")
    variants = variants_get(variant_ids=[v for v, _ in lines])
    quoted = []
    for variant_id, quantity in lines:
        variant = variants.get(variant_id)
        if variant is None or not variant.is_active:
            raise UnavailableItem("An item in your cart is no longer on sale.")
        quoted.append(
            QuoteLine(variant.id, variant.product_id, variant.sku, variant.product_title, variant.label,
                      variant.price, quantity)
        )  # fmt: skip
    subtotal = sum((line.line_total for line in quoted), Decimal(0))
    method = next((m for m in shipping_methods(subtotal=subtotal) if m.code == shipping_method), None)
    if method is None:
        raise ValueError(f"unknown shipping method {shipping_method!r}")
    rate = Decimal(settings.SHOP_TAX_RATE)
    gross = subtotal + method.price
    if settings.SHOP_PRICES_INCLUDE_TAX:
        tax = (gross - gross / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
        total = gross
    else:
        tax = (gross * rate).quantize(CENT, ROUND_HALF_UP)
        total = gross + tax
    return Quote(tuple(quoted), settings.SHOP_CURRENCY, subtotal, method, tax, total,
                 settings.SHOP_PRICES_INCLUDE_TAX, rate)  # fmt: skip


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class OrderLineInfo:
    sku: str
    name: str
    variant_label: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


@dataclass(frozen=True)
class StatusChangeInfo:
    from_status: str
    to_status: str
    label: str
    actor: str
    note: str
    at: datetime


@dataclass(frozen=True)
class OrderInfo:
    id: int
    number: str
    user_id: int | None
    email: str
    status: str
    status_label: str
    currency: str
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    prices_include_tax: bool
    shipping_method: str
    shipping_address: dict
    payment_id: int | None
    access_token: str
    created_at: datetime
    lines: tuple[OrderLineInfo, ...]
    history: tuple[StatusChangeInfo, ...]

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE


def _info(order: Order, lines: Iterable[OrderLine] | None = None, history: Iterable[StatusChange] | None = None
          ) -> OrderInfo:  # fmt: skip
    """lines and history default to the order's (prefetched) relations."""
    lines = tuple(
        OrderLineInfo(li.sku, li.name, li.variant_label, li.unit_price, li.quantity, li.line_total)
        for li in (order.lines.all() if lines is None else lines)
    )
    history = tuple(
        StatusChangeInfo(h.from_status, h.to_status, Status(h.to_status).label, h.actor, h.note, h.at)
        for h in (order.history.all() if history is None else history)
    )
    return OrderInfo(
        order.pk, order.number, order.user_id, order.email, order.status, Status(order.status).label, order.currency,
        order.subtotal, order.shipping, order.tax, order.total, order.prices_include_tax, order.shipping_method,
        order.shipping_address, order.payment_id, order.access_token, order.created_at, lines, history,
    )  # fmt: skip


def _load(*, history: bool = True, **lookup) -> Order | None:
    """One order by a unique lookup, with its lines and (unless history=False, one query less) its history.
    Nothing is prefetched when there is no such order."""
    related = ("lines", "history") if history else ("lines",)
    return unique(Order.objects.prefetch_related(*related).filter(**lookup))


def order_get(
    *, number: str, user_id: int | None = None, access_token: str | None = None, history: bool = True
) -> OrderInfo:
    """An order, if the customer (user_id) owns it or the guest holds its access token. Raises OrderNotFound.
    With history=False the status history is left out."""
    order = _load(number=number, history=history)
    allowed = order is not None and (
        (user_id is not None and order.user_id == user_id)
        or (access_token and secrets.compare_digest(order.access_token, access_token))
    )
    if not allowed:
        raise OrderNotFound(number)
    return _info(order, history=None if history else ())


def order_find(*, number: str, history: bool = True) -> OrderInfo:
    """For the shop's own processes (no customer check). Raises OrderNotFound."""
    order = _load(number=number, history=history)
    if order is None:
        raise OrderNotFound(number)
    return _info(order, history=None if history else ())


def order_current(order: OrderInfo) -> OrderInfo:
    """The same order with its status read again (one small query): after a payment outcome was applied."""
    status = Order.objects.filter(pk=order.id).values_list("status", flat=True).get()
    if status == order.status:
        return order
    return dataclasses.replace(order, status=status, status_label=Status(status).label)


def order_by_key(*, idempotency_key: str) -> OrderInfo | None:
    order = _load(idempotency_key=idempotency_key)
    return _info(order) if order else None


def orders_for_customer(*, user_id: int) -> tuple[OrderInfo, ...]:
    orders = Order.objects.filter(user_id=user_id).prefetch_related("lines", "history")
    return tuple(_info(o) for o in orders)


# ---------------------------------------------------------------- placing


def _new_number() -> str:
    return "NW-" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def order_place(
    *,
    idempotency_key: str,
    lines: list[tuple[int, int]],
    shipping_method: str,
    shipping_address: dict,
    email: str,
    user_id: int | None = None,
    reservation_ttl_seconds: int | None = None,
) -> OrderInfo:
    """Reserve the stock and create the order in pending_payment, with line snapshots. Idempotent by key.

    Raises catalog's OutOfStock (nothing is held then), EmptyBasket or UnavailableItem.
    """
    existing = order_by_key(idempotency_key=idempotency_key)
    if existing is not None:
        return existing
    quote = order_quote(lines=lines, shipping_method=shipping_method)
    key = f"order:{idempotency_key}"
    ttl = reservation_ttl_seconds or settings.SHOP_RESERVATION_MINUTES * 60
    stock_reserve(key=key, lines=[(line.variant_id, line.quantity) for line in quote.lines], ttl_seconds=ttl)
    actor = f"customer:{user_id}" if user_id else "guest"
    for _ in range(5):
        number = _new_number()  # 32^8 numbers: taken ones are rare, and the unique index tells
        try:
            return _create(number, idempotency_key, quote, shipping_address, email, user_id, key, actor)
        except IntegrityError:
            existing = order_by_key(idempotency_key=idempotency_key)
            if existing is not None:  # the same key at the same moment: the first order stands
                return existing
            if not Order.objects.filter(number=number).exists():
                raise
    raise OrderError("could not find a free order number")


def _create(number: str, idempotency_key: str, quote: Quote, shipping_address: dict, email: str,
            user_id: int | None, reservation_key: str, actor: str) -> OrderInfo:  # fmt: skip
    """One transaction: the order, its line snapshots, its first history entry and OrderPlaced. The answer is
    built from what was written, not read back."""
    with transaction.atomic():
        order = Order.objects.create(
            number=number, user_id=user_id, email=email, currency=quote.currency, subtotal=quote.subtotal,
            shipping=quote.shipping.price, tax=quote.tax, total=quote.total,
            prices_include_tax=quote.prices_include_tax, shipping_method=quote.shipping.code,
            shipping_address=shipping_address, reservation_key=reservation_key, idempotency_key=idempotency_key,
            access_token=secrets.token_urlsafe(24),
        )  # fmt: skip
        lines = OrderLine.objects.bulk_create(
            OrderLine(order=order, variant_id=li.variant_id, product_id=li.product_id, sku=li.sku, name=li.name,
                      variant_label=li.variant_label, unit_price=li.unit_price, currency=quote.currency,
                      quantity=li.quantity, line_total=li.line_total)
            for li in quote.lines
        )  # fmt: skip
        placed = StatusChange.objects.create(
            order=order, to_status=Status.PENDING_PAYMENT, actor=actor, note="Order placed"
        )
        publish(
            OrderPlaced(order_id=order.pk, number=order.number, user_id=user_id, total=order.total,
                        currency=order.currency, product_ids=tuple(li.product_id for li in quote.lines))
        )  # fmt: skip
    return _info(order, lines, [placed])


def order_attach_payment(*, number: str, payment_id: int) -> None:
    Order.objects.filter(number=number, payment_id__isnull=True).update(payment_id=payment_id)


# ---------------------------------------------------------------- lifecycle


def _transition(order: Order, to: str, actor: str, note: str = "", also: tuple[str, ...] = ()) -> None:
    """Validate and record a status change; `also` names other fields changed on the order, saved with it."""
    if to not in ALLOWED[Status(order.status)]:
        raise IllegalTransition(f"an order that is {order.get_status_display().lower()} cannot become {to}")
    StatusChange.objects.create(order=order, from_status=order.status, to_status=to, actor=actor, note=note[:300])
    order.status = to
    order.save(update_fields=["status", "updated_at", *also])


def order_transition(*, number: str, to: str, actor: str, note: str = "") -> OrderInfo:
    """Move an order to another status. Raises IllegalTransition or OrderNotFound."""
    with transaction.atomic():
        order = unique(Order.objects.select_for_update().filter(number=number))
        if order is None:
            raise OrderNotFound(number)
        _transition(order, to, actor, note)
    return order_find(number=number)


def order_payment_authorized(*, number: str, payment_id: int) -> None:
    """The payment went through: the order is paid and its reserved stock is sold. Idempotent."""
    with transaction.atomic():
        order = unique(Order.objects.select_for_update().filter(number=number))
        if order is None:
            raise OrderNotFound(number)
        if order.status == Status.CANCELLED:  # paid after it was cancelled (expired): give the money back
            transaction.on_commit(lambda: _void_quietly(payment_id, number))
            return
        if order.status != Status.PENDING_PAYMENT:
            return
        sold = stock_commit(key=order.reservation_key)
        if sold.status != "committed":  # the reservation expired while the customer paid: try once more
            try:
                retry = stock_reserve(key=f"{order.reservation_key}:again",
                                      lines=[(li.variant_id, li.quantity) for li in order.lines.all()])  # fmt: skip
                stock_commit(key=retry.key)
                order.reservation_key = retry.key
                order.save(update_fields=["reservation_key"])
            except Exception:
                logger.warning("order %s paid after its stock was released and sold out", number, exc_info=True)
                _transition(order, Status.CANCELLED, "system", "Sold out while the payment was made; not charged")
                transaction.on_commit(lambda: _void_quietly(payment_id, number))
                publish(OrderCancelled(order_id=order.pk, number=number, reason="sold_out"))
                return
        order.payment_id = payment_id
        _transition(order, Status.PAID, "system", "Payment authorised", also=("payment_id",))
        publish(OrderPaid(order_id=order.pk, number=number))


def _void_quietly(payment_id: int, number: str) -> None:
    try:
        payment_void(payment_id=payment_id, idempotency_key=f"{number}:void")
    except PaymentError:
        logger.exception("could not void the payment of order %s", number)


def order_payment_failed(*, number: str, message: str) -> None:
    """The payment failed: the order is cancelled and its stock released at once. Idempotent."""
    with transaction.atomic():
        order = unique(Order.objects.select_for_update().filter(number=number))
        if order is None or order.status != Status.PENDING_PAYMENT:
            return
        stock_restock(key=order.reservation_key)
        _transition(order, Status.CANCELLED, "system", f"Payment failed: {message}")
        publish(OrderCancelled(order_id=order.pk, number=number, reason="payment_failed"))


def order_cancel(*, number: str, actor: str, user_id: int | None = None, access_token: str | None = None) -> OrderInfo:
    """Cancel before shipment: stock goes back, the payment is voided (or refunded if captured).
    With user_id or access_token, only the owner may. Raises IllegalTransition, OrderNotFound."""
    if user_id is not None or access_token is not None:
        order_get(number=number, user_id=user_id, access_token=access_token)  # ownership
    with transaction.atomic():
        order = unique(Order.objects.select_for_update().filter(number=number))
        if order is None:
            raise OrderNotFound(number)
        if order.status not in CANCELLABLE:
            raise IllegalTransition("This order has left our warehouse and can no longer be cancelled.")
        try:
            stock_restock(key=order.reservation_key)
        except ReservationNotFound:
            logger.warning("order %s had no reservation to release", number)
        _transition(order, Status.CANCELLED, actor, "Cancelled")
        publish(OrderCancelled(order_id=order.pk, number=number, reason="cancelled"))
        payment_id = order.payment_id
    if payment_id:  # after commit, and outside any lock: the gateway may be slow
        payment = payment_get(payment_id=payment_id)
        if payment.amount_captured > payment.amount_refunded:
            payment_refund(payment_id=payment_id, idempotency_key=f"{number}:refund")
        elif payment.status == "authorized":
            payment_void(payment_id=payment_id, idempotency_key=f"{number}:void")
    return order_find(number=number)


def order_ship(*, number: str, actor: str) -> OrderInfo:
    """The parcel leaves: the order is shipped and the customer's payment is captured (charged now)."""
    order = order_transition(number=number, to=Status.SHIPPED, actor=actor, note="Handed to the carrier")
    if order.payment_id:
        payment_capture(payment_id=order.payment_id, idempotency_key=f"{number}:capture")
    with transaction.atomic():
        publish(OrderShipped(order_id=order.id, number=number))
    return order


def order_confirmation_claim(*, number: str) -> bool:
    """Claim the right to send an order's confirmation email: True exactly once per order."""
    return bool(Order.objects.filter(number=number, confirmation_sent_at__isnull=True).update(
        confirmation_sent_at=timezone.now()
    ))  # fmt: skip


def orders_expire_unpaid(*, older_than_minutes: int | None = None) -> int:
    """Cancel orders left awaiting payment past the reservation time, releasing their stock."""
    minutes = older_than_minutes if older_than_minutes is not None else settings.SHOP_RESERVATION_MINUTES
    cutoff = timezone.now() - timedelta(minutes=minutes)
    numbers = list(
        Order.objects.filter(status=Status.PENDING_PAYMENT, created_at__lt=cutoff).values_list("number", flat=True)
    )
    for number in numbers:
        try:
            order_cancel(number=number, actor="system")
        except OrderError:
            logger.exception("could not expire order %s", number)
    return len(numbers)


__all__ = [
    "ALLOWED",
    "CANCELLABLE",
    "EmptyBasket",
    "IllegalTransition",
    "OrderError",
    "OrderInfo",
    "OrderNotFound",
    "PaymentError",
    "Quote",
    "UnavailableItem",
    "order_attach_payment",
    "order_by_key",
    "order_cancel",
    "order_confirmation_claim",
    "order_current",
    "order_find",
    "order_get",
    "order_payment_authorized",
    "order_payment_failed",
    "order_place",
    "order_quote",
    "order_ship",
    "order_transition",
    "orders_expire_unpaid",
    "orders_for_customer",
    "shipping_methods",
]
