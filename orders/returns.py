"""Returns and refunds after delivery. Private to orders; services.py is its public face.

A customer asks to return delivered items within ORDERS_RETURN_DAYS, with a reason. Staff receive the parcel and
decide per line whether it goes back to sale stock (catalog, through the outbox) or not (damaged, missing). Staff
refund a return's lines (with or without the delivery charge, in full or in part) through payments, refund an
amount without any goods (goodwill), or take goods back without a refund. Every figure lives on the order's lines
(ordered, shipped, delivered, returned, refunded) and on the order (amount refunded), checked by the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from catalog.events import ReturnToStock
from kernel.bus import publish
from kernel.db import atomic
from kernel.money import round_money
from orders import access
from orders.events import OrderRefundIssued, ReturnReceived, ReturnRequested
from orders.models import Order, OrderLine, RefundRequest, Return, ReturnLine, Shipment
from orders.state import (
    ALLOWED,
    IllegalTransition,
    OrderError,
    OrderNotFound,
    Status,
    locked,
    shipping_status,
    touch,
    transition,
)
from orders.vouchers import paid_for
from payments.events import RefundPayment

RETURNABLE = {Status.PARTIALLY_DELIVERED, Status.DELIVERED, Status.PARTIALLY_RETURNED}
REFUNDABLE = {
    Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.PARTIALLY_DELIVERED, Status.DELIVERED,
    Status.PARTIALLY_RETURNED, Status.RETURNED, Status.REFUNDED,
}  # fmt: skip


class ReturnError(OrderError):
    """A return or a refund cannot be made as asked (too late, too many, nothing to refund, ...)."""


class ReturnNotFound(ReturnError):
    """The order has no return of that number."""


@dataclass(frozen=True)
class ReturnLineInfo:
    line_id: int
    sku: str
    name: str
    variant_label: str
    quantity: int
    restock: bool | None
    refunded: bool


@dataclass(frozen=True)
class ReturnInfo:
    number: int
    status: str
    status_label: str
    reason: str
    reason_label: str
    note: str
    created_at: datetime
    received_at: datetime | None
    amount_refunded: Decimal
    lines: tuple[ReturnLineInfo, ...]


REASONS = tuple(Return.Reason.choices)


def return_info(ret: Return, lines_by_id: dict[int, OrderLine]) -> ReturnInfo:
    lines = tuple(
        ReturnLineInfo(rl.line_id, lines_by_id[rl.line_id].sku, lines_by_id[rl.line_id].name,
                       lines_by_id[rl.line_id].variant_label, rl.quantity, rl.restock, rl.refunded)
        for rl in ret.lines.all()
    )  # fmt: skip
    return ReturnInfo(ret.number, ret.status, Return.Status(ret.status).label, ret.reason,
                      Return.Reason(ret.reason).label, ret.note, ret.created_at, ret.received_at,
                      ret.amount_refunded, lines)  # fmt: skip


def returns_of(order: Order, lines: list[OrderLine]) -> tuple[ReturnInfo, ...]:
    if order.status not in (*RETURNABLE, Status.RETURNED, Status.REFUNDED):
        return ()
    by_id = {line.pk: line for line in lines}
    return tuple(return_info(r, by_id) for r in order.returns.prefetch_related("lines"))


def returnable(order: Order, lines: list[OrderLine], now: datetime | None = None) -> dict[int, int]:
    """{order line id: quantity the customer may still ask to return}: delivered within ORDERS_RETURN_DAYS, less
    what is in a return already."""
    if order.status not in RETURNABLE:
        return {}
    now = now or timezone.now()
    window = timedelta(days=settings.ORDERS_RETURN_DAYS)
    in_time: dict[int, int] = {}
    for sl_line, quantity, delivered_at in Shipment.objects.filter(
        order=order, status=Shipment.Status.DELIVERED
    ).values_list("lines__line_id", "lines__quantity", "delivered_at"):
        if delivered_at and now - delivered_at <= window:
            in_time[sl_line] = in_time.get(sl_line, 0) + quantity
    asked: dict[int, int] = {}
    for line_id, quantity in (
        ReturnLine.objects.filter(ret__order=order)
        .exclude(ret__status=Return.Status.CANCELLED)
        .values_list("line_id", "quantity")
    ):
        asked[line_id] = asked.get(line_id, 0) + quantity
    return {
        line.pk: left
        for line in lines
        if (left := min(in_time.get(line.pk, 0), line.quantity_delivered) - asked.get(line.pk, 0)) > 0
    }


def _next_number(order: Order) -> int:
    return (order.returns.aggregate(n=Max("number"))["n"] or 0) + 1


def return_request(
    *,
    number: str,
    lines: list[tuple[int, int]],
    reason: str,
    note: str = "",
    actor: str,
    user_id: int | None = None,
    access_token: str | None = None,
    on_behalf: bool = False,
) -> ReturnInfo:
    """The customer (user_id, or a guest with the order's access token) asks to return delivered items; with
    on_behalf=True staff or an integrator asks for them (the caller has checked its right to: no owner check).
    Raises OrderNotFound (not theirs), ReturnError (too late, too many, nothing chosen, no such reason; `field`
    set for a line the order does not have and more than the line's quantity)."""
    if reason not in Return.Reason.values:
        raise ReturnError("Choose a reason for the return.", field="reason")
    with atomic(module="orders"):
        order = locked(number)
        owner = (
            on_behalf
            or (user_id is not None and order.user_id == user_id)
            or access.opens(order.number, order.access_token, access_token)
        )
        if not owner:
            raise OrderNotFound(number)
        order_lines = list(order.lines.all())
        by_id = {line.pk: line for line in order_lines}
        left = returnable(order, order_lines)
        wanted = {}
        for line_id, quantity in lines:
            if line_id not in by_id:
                raise ReturnError(f"order {number} has no line {line_id}", field="lines")
            if quantity < 1:
                continue
            if quantity > left.get(line_id, 0):
                raise ReturnError(
                    f"You can return up to {left.get(line_id, 0)} of that item "
                    f"(delivered in the last {settings.ORDERS_RETURN_DAYS} days, not yet in a return).",
                    field="lines" if quantity > by_id[line_id].quantity else None,
                )
            wanted[line_id] = quantity
        if not wanted:
            raise ReturnError("Choose at least one item to return.", field="lines")
        ret = Return.objects.create(order=order, number=_next_number(order), reason=reason, note=note[:500],
                                    requested_by=actor)  # fmt: skip
        ReturnLine.objects.bulk_create(ReturnLine(ret=ret, line_id=i, quantity=q) for i, q in wanted.items())
        touch(order)
        publish(ReturnRequested(order_id=order.pk, number=number, ret=ret.number))
        return return_info(ret, by_id)


def _locked_return(order: Order, ret_number: int) -> Return:
    ret = order.returns.select_for_update().filter(number=ret_number).first()
    if ret is None:
        raise ReturnNotFound(f"order {order.number} has no return {ret_number}")
    return ret


def _follow_lines(order: Order, lines: list[OrderLine], actor: str, note: str) -> bool:
    """The order's status after its lines and refunds changed. Whether it changed (and so updated_at)."""
    if order.status == Status.REFUNDED:
        return False  # refunded in full already: goods coming back change no status
    status = shipping_status(lines, order.status)
    if order.amount_refunded >= order.total:
        status = Status.REFUNDED
    if status != order.status:
        transition(order, status, actor, note)
        return True
    return False


def return_receive(*, number: str, ret: int, restock: dict[int, bool], actor: str, strict: bool = False) -> ReturnInfo:
    """Staff received a return's parcel: per order line, back to sale stock (True) or not (False: damaged,
    missing). Receiving it again changes nothing, or, with strict=True (the API), raises IllegalTransition.
    Raises ReturnNotFound, ReturnError (cancelled; `field` set for a line not in the return), OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)
        parcel = _locked_return(order, ret)
        lines = {line.pk: line for line in order.lines.all()}
        if parcel.status == Return.Status.RECEIVED:
            if strict:
                raise IllegalTransition(f"return {ret} of order {number} has been received already")
            return return_info(parcel, lines)
        if parcel.status != Return.Status.REQUESTED:
            raise ReturnError(f"return {ret} of order {number} is {parcel.get_status_display().lower()}")
        returned = list(parcel.lines.all())
        unknown = sorted(set(restock) - {rl.line_id for rl in returned})
        if unknown:
            raise ReturnError(f"return {ret} of order {number} has no line {unknown[0]}", field="lines")
        back_to_stock = []
        for rl in returned:
            rl.restock = bool(restock.get(rl.line_id, False))
            rl.save(update_fields=["restock"])
            line = lines[rl.line_id]
            line.quantity_returned += rl.quantity
            line.save(update_fields=["quantity_returned"])
            if rl.restock:
                back_to_stock.append((line.variant_id, rl.quantity))
        parcel.status, parcel.received_at = Return.Status.RECEIVED, timezone.now()
        parcel.save(update_fields=["status", "received_at"])
        if not _follow_lines(order, list(lines.values()), actor, f"Return {ret} received"):
            touch(order)
        if back_to_stock:
            publish(ReturnToStock(key=f"{number}:return:{ret}", lines=tuple(back_to_stock)))
        publish(ReturnReceived(order_id=order.pk, number=number, ret=ret,
                               restocked=sum(q for _, q in back_to_stock)))  # fmt: skip
        return return_info(parcel, lines)


def _paid(line: OrderLine, quantity: int, currency: str) -> Decimal:
    """What `quantity` more of the line cost after its share of the order's discount (vouchers.paid_for): the
    units refunded one return after another add up to what the line cost."""
    return paid_for(line_total=line.line_total, discount=line.discount, quantity=line.quantity,
                    before=line.quantity_refunded, count=quantity, currency=currency)  # fmt: skip


def _refundable_left(order: Order) -> Decimal:
    return order.total - order.amount_refunded


def _request_refund(order: Order, amount: Decimal, key: str, actor: str, note: str, ret: int = 0) -> None:
    if amount <= 0:
        raise ReturnError("Nothing to refund.")
    if amount > _refundable_left(order):
        # more than the order's total is wrong whatever was refunded before
        raise ReturnError(f"Only {_refundable_left(order)} {order.currency} of this order can still be refunded.",
                          field="amount" if amount > order.total else None)  # fmt: skip
    if not order.payment_id:
        raise ReturnError("This order has no payment to refund.")
    order.amount_refunded += amount
    order.save(update_fields=["amount_refunded", "updated_at"])
    publish(RefundPayment(payment_id=order.payment_id, idempotency_key=key, amount=amount))
    publish(OrderRefundIssued(order_id=order.pk, number=order.number, amount=amount,
                              total_refunded=order.amount_refunded, currency=order.currency, ret=ret))  # fmt: skip
    order.history.create(from_status=order.status, to_status=order.status, actor=actor,
                         note=f"{note}: {amount} {order.currency}"[:300])  # fmt: skip


def return_refund(
    *,
    number: str,
    ret: int,
    actor: str,
    amount: Decimal | None = None,
    include_shipping: bool = False,
    request_key: str | None = None,
) -> ReturnInfo:
    """Refund a return: by default the value of its lines not refunded yet (plus the delivery charge with
    include_shipping), or `amount` (a partial refund). The goods need not have come back. Refunding a return whose
    lines are all refunded again without an amount is refused (it would refund the delivery charge twice). Raises
    ReturnNotFound, ReturnError (`field` set for an amount above the order's total), OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)
        parcel = _locked_return(order, ret)
        lines = {line.pk: line for line in order.lines.all()}
        key = hashlib.sha256(request_key.encode()).hexdigest()[:64] if request_key is not None else None
        if key is not None and RefundRequest.objects.filter(key=key).exists():
            return return_info(parcel, lines)  # asked before with this key (request_key as in order_refund_amount)
        if parcel.status == Return.Status.CANCELLED:
            raise ReturnError(f"return {ret} of order {number} is cancelled")
        open_lines = [rl for rl in parcel.lines.all() if not rl.refunded]
        if amount is None and not open_lines:
            raise ReturnError(f"the items of return {ret} of order {number} have been refunded already")
        value = sum((_paid(lines[rl.line_id], rl.quantity, order.currency) for rl in open_lines), Decimal(0))
        if not order.prices_include_tax:
            value *= 1 + Decimal(settings.SHOP_TAX_RATE)
        if include_shipping:
            value += order.shipping
        amount = round_money(value if amount is None else amount, order.currency)
        # Each refund is one staff action with a key of its own; the command carries it, so a redelivery of the
        # command refunds once.
        _request_refund(order, amount, f"{number}:return:{ret}:refund:{key[:24] if key else secrets.token_hex(6)}",
                        actor, f"Refund for return {ret}", ret)  # fmt: skip
        if key is not None:
            RefundRequest.objects.create(order=order, key=key, amount=amount)
        for rl in open_lines:
            rl.refunded = True
            rl.save(update_fields=["refunded"])
            line = lines[rl.line_id]
            line.quantity_refunded += rl.quantity
            line.save(update_fields=["quantity_refunded"])
        parcel.amount_refunded += amount
        parcel.save(update_fields=["amount_refunded"])
        _follow_lines(order, list(lines.values()), actor, f"Return {ret} refunded")
        return return_info(parcel, lines)


def order_refund_amount(*, number: str, amount: Decimal, actor: str, note: str = "Goodwill refund",
                        request_key: str | None = None) -> None:  # fmt: skip
    """Refund an amount without any goods coming back (a goodwill gesture, a late parcel). request_key: the
    requester's idempotency key (the API's Idempotency-Key, with whose it is); a second request with it refunds
    nothing more, however long after and whatever happened to the first one's answer. Raises ReturnError,
    OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)  # the order's row lock serialises two requests with one key
        key = None
        if request_key is not None:
            key = hashlib.sha256(request_key.encode()).hexdigest()[:64]
            if RefundRequest.objects.filter(key=key).exists():
                return
        if order.status not in REFUNDABLE:
            raise ReturnError("Only an order that has shipped can be refunded in part; cancel it instead.")
        amount = round_money(amount, order.currency)
        payment_key = f"{number}:refund:{key[:24] if key else secrets.token_hex(6)}"
        _request_refund(order, amount, payment_key, actor, note)
        if key is not None:
            RefundRequest.objects.create(order=order, key=key, amount=amount)
        _follow_lines(order, list(order.lines.all()), actor, note)


def order_payment_refunded(*, number: str, total_refunded: Decimal, currency: str) -> None:
    """payments refunded this order's payment, perhaps from its own admin: the order counts what payments counts,
    and an order refunded in full becomes refunded. Idempotent (only a higher total changes anything)."""
    with atomic(module="orders"):
        order = Order.objects.select_for_update().filter(number=number).first()
        if order is None or currency != order.currency or total_refunded <= order.amount_refunded:
            return
        added, before = total_refunded - order.amount_refunded, order.amount_refunded
        order.amount_refunded = min(total_refunded, order.total)
        order.save(update_fields=["amount_refunded", "updated_at"])
        order.history.create(from_status=order.status, to_status=order.status, actor="payments",
                             note=f"Refunded by payments: {added} {order.currency}")  # fmt: skip
        publish(OrderRefundIssued(order_id=order.pk, number=number, amount=order.amount_refunded - before,
                                  total_refunded=order.amount_refunded, currency=order.currency))  # fmt: skip
        if order.amount_refunded >= order.total and Status.REFUNDED in ALLOWED[Status(order.status)]:
            transition(order, Status.REFUNDED, "payments", "Refunded in full")
