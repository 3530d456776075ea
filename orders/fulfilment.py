"""Fulfilment: parcels (shipments) of some or all of an order's lines, shipped and delivered. Private to orders;
services.py is its public face.

A paid order ships in as many parcels as staff make. Shipping a parcel asks payments (through the outbox, in the
same transaction) to capture what the parcel holds; the last parcel captures the rest, delivery included. The
order's status follows its lines: partly shipped, shipped, partly delivered, delivered.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone

from kernel.bus import publish
from kernel.db import atomic
from kernel.money import round_money
from orders.events import OrderDelivered, OrderShipped, ShipmentDelivered, ShipmentShipped
from orders.models import CarrierNotification, Order, OrderLine, Shipment, ShipmentLine
from orders.state import (
    IllegalTransition,
    ShipmentError,
    ShipmentNotFound,
    Status,
    locked,
    shipping_status,
    touch,
    transition,
)
from orders.vouchers import paid_for
from payments.events import CapturePayment

logger = logging.getLogger(__name__)

SHIPPABLE = {Status.PAID, Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.PARTIALLY_DELIVERED}
HAS_PARCELS = {Status.FULFILLING, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.PARTIALLY_DELIVERED,
               Status.DELIVERED, Status.REFUNDED}  # fmt: skip
AUTO_CARRIER = "post"


@dataclass(frozen=True)
class ShipmentLineInfo:
    line_id: int
    sku: str
    name: str
    variant_label: str
    quantity: int


@dataclass(frozen=True)
class ShipmentInfo:
    number: int
    status: str
    status_label: str
    carrier: str
    carrier_name: str
    tracking_number: str
    tracking_url: str
    capture_amount: Decimal | None  # None: the last parcel, which captured the rest
    created_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: tuple[ShipmentLineInfo, ...]


def carrier_name(carrier: str) -> str:
    return settings.ORDERS_CARRIERS.get(carrier, (carrier,))[0]


def tracking_url_for(carrier: str, tracking_number: str) -> str:
    """The carrier's tracking page for a parcel ("" for a carrier the shop does not know or no number)."""
    known = settings.ORDERS_CARRIERS.get(carrier)
    if not known or not tracking_number:
        return ""
    return known[1].format(tracking=quote(tracking_number, safe=""))


def shipment_info(shipment: Shipment, lines_by_id: dict[int, OrderLine]) -> ShipmentInfo:
    lines = tuple(
        ShipmentLineInfo(sl.line_id, lines_by_id[sl.line_id].sku, lines_by_id[sl.line_id].name,
                         lines_by_id[sl.line_id].variant_label, sl.quantity)
        for sl in shipment.lines.all()
    )  # fmt: skip
    return ShipmentInfo(
        shipment.number, shipment.status, Shipment.Status(shipment.status).label, shipment.carrier,
        carrier_name(shipment.carrier), shipment.tracking_number, shipment.tracking_url, shipment.capture_amount,
        shipment.created_at, shipment.shipped_at, shipment.delivered_at, lines,
    )  # fmt: skip


def shipments_of(order: Order, lines: list[OrderLine]) -> tuple[ShipmentInfo, ...]:
    """The order's parcels (two queries); none are read for an order not being fulfilled."""
    if order.status not in HAS_PARCELS:
        return ()
    by_id = {line.pk: line for line in lines}
    return tuple(shipment_info(s, by_id) for s in order.shipments.prefetch_related("lines"))


def _shipment(order: Order, number: int) -> Shipment:
    shipment = order.shipments.select_for_update().filter(number=number).first()
    if shipment is None:
        raise ShipmentNotFound(f"order {order.number} has no parcel {number}")
    return shipment


def _save_tracking(save, carrier: str, tracking_number: str) -> None:
    """Run save(), which writes a parcel's tracking number, in a savepoint: a number the carrier has on another
    parcel already is the caller's mistake (ShipmentError naming tracking_number), not a crash."""
    try:
        with atomic(module="orders"):
            save()
    except IntegrityError:
        if tracking_number and Shipment.objects.filter(carrier=carrier, tracking_number=tracking_number).exists():
            raise ShipmentError(
                f"{carrier_name(carrier)} tracking number {tracking_number} is on another parcel already",
                field="tracking_number",
            ) from None
        raise


def _info(order: Order, shipment: Shipment) -> ShipmentInfo:
    return shipment_info(shipment, {line.pk: line for line in order.lines.all()})


def shipment_create(
    *,
    number: str,
    carrier: str,
    actor: str,
    lines: list[tuple[int, int]] | None = None,
    tracking_number: str = "",
    tracking_url: str = "",
) -> ShipmentInfo:
    """Pack a parcel of (order line id, quantity) lines, or of everything not yet in a parcel (lines=None).
    Raises ShipmentError (nothing left, an unknown line, more than is left, a tracking number taken; `field` set
    for an unknown line, more than the line's quantity and a tracking number taken), IllegalTransition,
    OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)
        if order.status not in SHIPPABLE:
            raise IllegalTransition(f"an order that is {order.get_status_display().lower()} cannot be shipped")
        order_lines = {line.pk: line for line in order.lines.all()}
        packed: dict[int, int] = {}
        for line_id, quantity in ShipmentLine.objects.filter(shipment__order=order).values_list("line_id", "quantity"):
            packed[line_id] = packed.get(line_id, 0) + quantity
        left = {line_id: line.quantity - packed.get(line_id, 0) for line_id, line in order_lines.items()}
        wanted: dict[int, int] = {}
        for line_id, quantity in lines if lines is not None else [(i, q) for i, q in left.items() if q > 0]:
            if line_id not in order_lines:
                raise ShipmentError(f"order {number} has no line {line_id}", field="lines")
            if quantity < 1:
                continue
            wanted[line_id] = wanted.get(line_id, 0) + quantity
            if wanted[line_id] > left[line_id]:
                line = order_lines[line_id]
                beyond_the_order = wanted[line_id] > line.quantity  # wrong whatever was packed before
                raise ShipmentError(f"only {left[line_id]} of {line.sku} ({line.name}) are left to ship",
                                    field="lines" if beyond_the_order else None)  # fmt: skip
        if not wanted:
            raise ShipmentError(f"nothing of order {number} is left to ship")
        next_number = (order.shipments.aggregate(n=Max("number"))["n"] or 0) + 1
        tracking_number = tracking_number.strip()
        shipment = Shipment(
            order=order, number=next_number, carrier=carrier, tracking_number=tracking_number,
            tracking_url=tracking_url or tracking_url_for(carrier, tracking_number),
        )  # fmt: skip
        _save_tracking(shipment.save, carrier, tracking_number)
        ShipmentLine.objects.bulk_create(
            ShipmentLine(shipment=shipment, line_id=line_id, quantity=quantity) for line_id, quantity in wanted.items()
        )
        if order.status == Status.PAID:
            transition(order, Status.FULFILLING, actor, "Being packed")
        else:
            touch(order)
        return _info(order, shipment)


def _capture_amount(order: Order, shipment: Shipment, lines: dict[int, OrderLine], last: bool) -> Decimal | None:
    """What shipping this parcel charges: its lines' value (with tax where prices are without it), or None for the
    last parcel, which captures all that is left of the authorisation, delivery included."""
    if last:
        return None
    # what the lines cost after their share of the order's discount; the last parcel captures the rest
    value = sum(
        (paid_for(line_total=lines[sl.line_id].line_total, discount=lines[sl.line_id].discount,
                  quantity=lines[sl.line_id].quantity, before=0, count=sl.quantity, currency=order.currency)
         for sl in shipment.lines.all()),
        Decimal(0),
    )  # fmt: skip
    if not order.prices_include_tax:
        value *= 1 + Decimal(settings.SHOP_TAX_RATE)
    return round_money(value, order.currency)


def shipment_ship(
    *, number: str, shipment: int, actor: str, tracking_number: str | None = None, strict: bool = False
) -> ShipmentInfo:
    """Hand a parcel to its carrier: the customer is charged for it (a capture, through the outbox, in this
    transaction) and told (an email with the tracking link). Shipping a parcel already shipped changes nothing,
    or, with strict=True (the API), raises IllegalTransition. Raises ShipmentNotFound, ShipmentError (a tracking
    number taken), OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)
        parcel = _shipment(order, shipment)
        lines = {line.pk: line for line in order.lines.all()}
        if parcel.status != Shipment.Status.PACKING:
            if strict:
                raise IllegalTransition(f"parcel {parcel.number} of order {number} has been shipped already")
            return shipment_info(parcel, lines)
        if tracking_number is not None and tracking_number.strip():
            parcel.tracking_number = tracking_number.strip()
            parcel.tracking_url = parcel.tracking_url or tracking_url_for(parcel.carrier, parcel.tracking_number)
        for sl in parcel.lines.all():
            line = lines[sl.line_id]
            line.quantity_shipped += sl.quantity
            line.save(update_fields=["quantity_shipped"])
        last = all(line.quantity_shipped == line.quantity for line in lines.values())
        parcel.capture_amount = _capture_amount(order, parcel, lines, last)
        parcel.status, parcel.shipped_at = Shipment.Status.SHIPPED, timezone.now()
        fields = ["status", "shipped_at", "capture_amount", "tracking_number", "tracking_url"]
        _save_tracking(lambda: parcel.save(update_fields=fields), parcel.carrier, parcel.tracking_number)
        status = shipping_status(list(lines.values()), order.status)
        if status != order.status:
            transition(order, status, actor, f"Parcel {parcel.number} handed to {carrier_name(parcel.carrier)}")
        else:
            touch(order)
        publish(ShipmentShipped(order_id=order.pk, number=number, shipment=parcel.number, carrier=parcel.carrier,
                                tracking_number=parcel.tracking_number, tracking_url=parcel.tracking_url))  # fmt: skip
        if last:
            publish(OrderShipped(order_id=order.pk, number=number))
        if order.payment_id:
            publish(CapturePayment(payment_id=order.payment_id, idempotency_key=f"{number}:capture:{parcel.number}",
                                   amount=parcel.capture_amount))  # fmt: skip
        return shipment_info(parcel, lines)


def shipment_deliver(*, number: str, shipment: int, actor: str, strict: bool = False) -> ShipmentInfo:
    """The carrier delivered the parcel. Delivering it again changes nothing, or, with strict=True (the API),
    raises IllegalTransition. Raises ShipmentNotFound, ShipmentError (not shipped yet), OrderNotFound."""
    with atomic(module="orders"):
        order = locked(number)
        parcel = _shipment(order, shipment)
        lines = {line.pk: line for line in order.lines.all()}
        if parcel.status == Shipment.Status.DELIVERED:
            if strict:
                raise IllegalTransition(f"parcel {parcel.number} of order {number} has been delivered already")
            return shipment_info(parcel, lines)
        if parcel.status != Shipment.Status.SHIPPED:
            raise ShipmentError(f"parcel {parcel.number} of order {number} has not been shipped yet")
        for sl in parcel.lines.all():
            line = lines[sl.line_id]
            line.quantity_delivered += sl.quantity
            line.save(update_fields=["quantity_delivered"])
        parcel.status, parcel.delivered_at = Shipment.Status.DELIVERED, timezone.now()
        parcel.save(update_fields=["status", "delivered_at"])
        status = shipping_status(list(lines.values()), order.status)
        if status != order.status:
            transition(order, status, actor, f"Parcel {parcel.number} delivered")
        else:
            touch(order)
        publish(ShipmentDelivered(order_id=order.pk, number=number, shipment=parcel.number))
        if status == Status.DELIVERED:
            publish(OrderDelivered(order_id=order.pk, number=number))
        return shipment_info(parcel, lines)


def order_ship(
    *, number: str, actor: str, carrier: str = AUTO_CARRIER, tracking_number: str = "", strict: bool = False
) -> None:
    """Ship everything: what is left goes in one parcel (with `carrier` and `tracking_number`), and every parcel
    being packed is shipped. An order shipped already is left as it is, or, with strict=True (the API), raises
    IllegalTransition, as does an order with nothing left to ship."""
    with atomic(module="orders"):
        order = locked(number)
        if order.status in (Status.SHIPPED, Status.DELIVERED) and not strict:
            return
        left = sum(line.quantity for line in order.lines.all()) - sum(
            ShipmentLine.objects.filter(shipment__order=order).values_list("quantity", flat=True)
        )
        packing = list(order.shipments.filter(status=Shipment.Status.PACKING).values_list("number", flat=True))
        if strict and order.status in (Status.SHIPPED, Status.DELIVERED):
            raise IllegalTransition(f"order {number} has been shipped already")
        if strict and order.status not in SHIPPABLE:
            raise IllegalTransition(f"an order that is {order.get_status_display().lower()} cannot be shipped")
        if strict and left <= 0 and not packing:
            raise IllegalTransition(f"nothing of order {number} is left to ship")
        if left > 0:
            created = shipment_create(number=number, carrier=carrier, actor=actor, tracking_number=tracking_number)
            packing.append(created.number)
        for parcel in packing:
            shipment_ship(number=number, shipment=parcel, actor=actor)


def order_deliver(*, number: str, actor: str, strict: bool = False) -> None:
    """Every parcel shipped is delivered. Raises IllegalTransition for an order with nothing shipped; an order
    delivered already is left as it is, or, with strict=True (the API), raises IllegalTransition, as does an order
    with no parcel on its way."""
    with atomic(module="orders"):
        order = locked(number)
        if order.status == Status.DELIVERED:
            if strict:
                raise IllegalTransition(f"order {number} has been delivered already")
            return
        if order.status not in (Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.PARTIALLY_DELIVERED):
            raise IllegalTransition(f"an order that is {order.get_status_display().lower()} cannot be delivered")
        on_the_way = list(order.shipments.filter(status=Shipment.Status.SHIPPED).values_list("number", flat=True))
        if strict and not on_the_way:
            raise IllegalTransition(f"no parcel of order {number} is on its way")
        for parcel in on_the_way:
            shipment_deliver(number=number, shipment=parcel, actor=actor)


def orders_auto_fulfil(*, number: str) -> bool:
    """ORDERS_AUTO_FULFIL: pack and ship a paid order in one parcel with a generated tracking number. Idempotent
    (under the order's lock, only a paid order with no parcel is shipped). True if it shipped it now."""
    with atomic(module="orders"):
        order = locked(number)
        if order.status != Status.PAID or order.shipments.exists():
            return False
        tracking = "NW" + secrets.token_hex(6).upper()
        shipment_create(number=number, carrier=AUTO_CARRIER, actor="system", tracking_number=tracking)
        shipment_ship(number=number, shipment=1, actor="system")
    return True


def shipment_claim_email(*, number: str, shipment: int) -> bool:
    """Claim the right to send a parcel's "on its way" email: True once per parcel."""
    return bool(
        Shipment.objects.filter(order__number=number, number=shipment, email_sent_at__isnull=True).update(
            email_sent_at=timezone.now()
        )
    )


def carrier_update(*, carrier: str, event_id: str, tracking_number: str, status: str) -> str:
    """A carrier's delivery update, verified by the caller: applied once per (carrier, event id). Returns
    "applied", "duplicate" or "ignored" (a status that changes nothing here). Raises ShipmentError for a parcel
    the shop does not know."""
    parcel = (
        Shipment.objects.filter(carrier=carrier, tracking_number=tracking_number)
        .values_list("order__number", "number")
        .first()
    )
    if parcel is None:
        raise ShipmentError(f"no parcel {tracking_number} with {carrier}")
    with atomic(module="orders"):
        _, created = CarrierNotification.objects.get_or_create(
            carrier=carrier, event_id=event_id, defaults={"tracking_number": tracking_number, "status": status}
        )
        if not created:
            return "duplicate"
        if status != "delivered":
            return "ignored"
        order_number, shipment = parcel
        shipment_deliver(number=order_number, shipment=shipment, actor=f"carrier:{carrier}")
    return "applied"
