"""Past orders for a demo shop: delivered, paid orders written in bulk, as if customers had bought over months.

They are history, so they touch nothing of the present: no stock is reserved or sold (catalog is not asked), no
payment is made, no email goes out (the confirmation is marked sent when the order was placed). They still
publish what a real order's life publishes (OrderPlaced, OrderPaid, OrderDelivered), through the outbox, so the
modules that learn from orders (recommendations) learn from these as they would in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from kernel.bus import publish
from kernel.db import atomic
from kernel.money import round_money
from orders.events import OrderDelivered, OrderPaid, OrderPlaced
from orders.models import Order, OrderLine, StatusChange

HISTORY_KEY_PREFIX = "history:"
BATCH = 250  # orders per transaction: the outbox rows of a batch go out in one statement at its commit
NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class HistoryLine:
    variant_id: int
    product_id: int
    sku: str
    name: str
    variant_label: str
    unit_price: Decimal
    quantity: int = 1


@dataclass(frozen=True)
class HistoryOrder:
    """One past order: `key` names it for good (a second run skips it), `placed_at` is when it was bought."""

    key: str
    email: str
    user_id: int | None
    placed_at: datetime
    lines: tuple[HistoryLine, ...]
    full_name: str = ""


@dataclass(frozen=True)
class HistoryResult:
    created: int
    existing: int


def _number(rng: secrets.SystemRandom) -> str:
    return "NW-" + "".join(rng.choice(NUMBER_ALPHABET) for _ in range(8))


def orders_demo_history(
    *, orders: Sequence[HistoryOrder], progress: Callable[[int], None] | None = None
) -> HistoryResult:
    """Write these past orders as delivered and paid, with line snapshots and their status history, and publish
    OrderPlaced, OrderPaid and OrderDelivered for each. Idempotent by key: orders already written are skipped.
    Leaves catalog's stock alone. For development shops (demo_setup). progress(n) after each batch of n orders.

    Raises ValueError for an order without lines or with a quantity below 1 (nothing of its batch is written).
    """
    keys = [HISTORY_KEY_PREFIX + o.key for o in orders]
    existing = set()
    for start in range(0, len(keys), 900):  # SQLite takes up to 999 parameters
        existing.update(Order.objects.filter(idempotency_key__in=keys[start : start + 900])
                        .values_list("idempotency_key", flat=True))  # fmt: skip
    todo = [o for o in orders if HISTORY_KEY_PREFIX + o.key not in existing]
    taken = set()
    rng = secrets.SystemRandom()
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        _write(batch, rng, taken)
        if progress:
            progress(len(batch))
    return HistoryResult(created=len(todo), existing=len(orders) - len(todo))


def _write(batch: Sequence[HistoryOrder], rng: secrets.SystemRandom, taken: set[str]) -> None:
    currency = settings.SHOP_CURRENCY
    free_above = Decimal(settings.SHOP_FREE_SHIPPING_ABOVE)
    rate = Decimal(settings.SHOP_TAX_RATE)
    with atomic(module="orders"):
        numbers = []
        while len(numbers) < len(batch):
            candidates = {_number(rng) for _ in batch} - taken
            candidates -= set(Order.objects.filter(number__in=candidates).values_list("number", flat=True))
            for number in candidates:
                if len(numbers) < len(batch):
                    numbers.append(number)
                    taken.add(number)
        new = []
        for number, spec in zip(numbers, batch, strict=True):
            if not spec.lines or any(line.quantity < 1 for line in spec.lines):
                raise ValueError(f"history order {spec.key}: every order needs lines of at least one item")
            subtotal = sum((round_money(li.unit_price * li.quantity, currency) for li in spec.lines), Decimal(0))
            shipping = Decimal(0) if subtotal >= free_above else Decimal("4.90")
            gross = round_money(subtotal + shipping, currency)
            if settings.SHOP_PRICES_INCLUDE_TAX:
                tax, total = round_money(gross - gross / (1 + rate), currency), gross
            else:
                tax = round_money(gross * rate, currency)
                total = gross + tax
            address = {"full_name": spec.full_name or spec.email.split("@")[0], "line1": "1 Demo Street",
                       "line2": "", "postal_code": "10115", "city": "Berlin", "region": "",
                       "country": settings.SHOP_DEFAULT_COUNTRY, "phone": ""}  # fmt: skip
            new.append(Order(number=number, user_id=spec.user_id, email=spec.email, status=Order.Status.DELIVERED,
                      currency=currency, subtotal=subtotal, shipping=shipping, tax=tax, total=total,
                      prices_include_tax=settings.SHOP_PRICES_INCLUDE_TAX, shipping_method="standard",
                      shipping_address=address, billing_address=address, reservation_key="",
                      idempotency_key=HISTORY_KEY_PREFIX + spec.key, access_token=secrets.token_urlsafe(24),
                      confirmation_sent_at=spec.placed_at, created_at=spec.placed_at))  # fmt: skip
        Order.objects.bulk_create(new)
        if new[0].pk is None:  # a backend that does not return ids from a bulk insert
            ids = dict(Order.objects.filter(number__in=numbers).values_list("number", "pk"))
            for order in new:
                order.pk = ids[order.number]
        lines, history = [], []
        for order, spec in zip(new, batch, strict=True):
            for li in spec.lines:
                total = round_money(li.unit_price * li.quantity, currency)
                lines.append(OrderLine(order_id=order.pk, variant_id=li.variant_id, product_id=li.product_id,
                                       sku=li.sku, name=li.name, variant_label=li.variant_label,
                                       unit_price=li.unit_price, currency=currency, quantity=li.quantity,
                                       line_total=total, quantity_shipped=li.quantity,
                                       quantity_delivered=li.quantity))  # fmt: skip
            at = spec.placed_at
            steps = [("", Order.Status.PENDING_PAYMENT, "Order placed", at),
                     (Order.Status.PENDING_PAYMENT, Order.Status.PAID, "Payment authorised", at + timedelta(minutes=2)),
                     (Order.Status.PAID, Order.Status.SHIPPED, "Shipped", at + timedelta(days=1)),
                     (Order.Status.SHIPPED, Order.Status.DELIVERED, "Delivered", at + timedelta(days=3))]  # fmt: skip
            for before, after, note, when in steps:
                history.append(StatusChange(order_id=order.pk, from_status=before, to_status=after, actor="system",
                                            note=f"{note} (demo history)", at=when))  # fmt: skip
            publish(OrderPlaced(order_id=order.pk, number=order.number, user_id=spec.user_id, total=order.total,
                                currency=currency, product_ids=tuple(li.product_id for li in spec.lines)))  # fmt: skip
            publish(OrderPaid(order_id=order.pk, number=order.number, user_id=spec.user_id,
                              product_ids=tuple(sorted({li.product_id for li in spec.lines}))))  # fmt: skip
            publish(OrderDelivered(order_id=order.pk, number=order.number))
        OrderLine.objects.bulk_create(lines)
        StatusChange.objects.bulk_create(history)
