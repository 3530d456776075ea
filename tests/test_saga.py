"""The purchase saga: one module, one transaction; cross-module effects through the outbox, each applied once by
the module that owns it, and the process ends consistent when a step fails or a process dies between steps."""

from __future__ import annotations

import contextlib
import itertools
import re
import weakref
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.core import mail
from django.db import connections
from django.utils import timezone

from catalog.models import Reservation, StockItem
from catalog.services import reservations_expire
from kernel import bus
from kernel.models import Delivery
from orders import services
from orders.models import Order
from payments.models import Transaction
from payments.services import payment_get
from tests import outbox
from tests.factories import make_category, make_product
from tests.test_orders import pay, place

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: every service's transaction is its own

WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


def _table_modules() -> dict[str, str]:
    shop_modules = set(settings.SHOP_MODULES)
    return {
        model._meta.db_table: model._meta.app_label
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in shop_modules and model._meta.app_label != "kernel"
    }


class _Written(defaultdict):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.statements: dict[int, list[str]] = defaultdict(list)


@contextlib.contextmanager
def transactions() -> Iterator[dict[int, set[str]]]:
    """Record, for each database transaction (its outermost atomic block), the modules whose tables it wrote."""
    tables = _table_modules()
    written = _Written(set)
    serial: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    counter = itertools.count(1)
    statements = written.statements

    def record(execute, sql, params, many, context):
        connection = context["connection"]
        match = WRITE.match(sql)
        if match and connection.in_atomic_block and match.group(1) in tables:
            outermost = connection.atomic_blocks[0]
            if outermost not in serial:  # ids of finished blocks are reused: number each block once
                serial[outermost] = next(counter)
            written[serial[outermost]].add(tables[match.group(1)])
            statements[serial[outermost]].append(sql[:70])
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(record))
        yield written


def statements_of(written, number: int) -> list[str]:
    return written.statements[number]


def stock(variant) -> tuple[int, int]:
    item = StockItem.objects.get(variant=variant)
    return item.on_hand, item.reserved


@pytest.fixture
def kettle():
    variants = [{"options": {"Colour": "Copper"}, "price": "30.00", "stock": 5}]
    return make_product("Copper Kettle", make_category("Kitchen"), variants=variants).variants.get()


class Crash:
    """From begin(), the process that commits a change dies before it hands the events on: nothing runs after
    commit, and what is left is only what the outbox holds. recover() is the sweep, run later by beat."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch

    def begin(self) -> None:
        self.monkeypatch.setattr(bus, "_dispatch", lambda entries, using: None)

    def recover(self) -> int:
        self.monkeypatch.undo()
        return bus.sweep(now=timezone.now() + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS + 1))


@pytest.fixture
def process_dies_after_commit(monkeypatch) -> Crash:
    return Crash(monkeypatch)


def test_every_step_of_a_purchase_writes_one_modules_tables_per_transaction(kettle):
    with transactions() as written:
        first = place(kettle, 2, key="one")
        pay(first)
        services.order_start_fulfilment(number=first.number, actor="staff:1")
        services.order_ship(number=first.number, actor="staff:1")
        services.order_deliver(number=first.number, actor="staff:1")
        services.order_refund(number=first.number, actor="staff:1")
        second = place(kettle, 1, key="two")
        pay(second)
        services.order_cancel(number=second.number, actor="customer:1")
    mixed = [(sorted(modules), statements_of(written, n)) for n, modules in written.items() if len(modules) > 1]
    assert mixed == [], "a transaction wrote the tables of two modules"
    assert {m for modules in written.values() for m in modules} >= {"orders", "catalog", "payments"}
    assert stock(kettle) == (3, 0), "the refunded order's goods did not come back (no return), the cancelled did"
    refunded = payment_get(payment_id=services.order_find(number=first.number).payment_id)
    assert (refunded.amount_captured, refunded.amount_refunded) == (Decimal("60.00"), Decimal("60.00"))
    assert payment_get(payment_id=services.order_find(number=second.number).payment_id).status == "voided"
    assert outbox.undelivered() == []


def test_shipping_records_the_event_and_the_capture_with_the_status_so_a_crash_loses_neither(
    kettle, process_dies_after_commit
):
    order = place(kettle, key="ship-crash")
    pay(order)
    process_dies_after_commit.begin()
    shipped = services.order_ship(number=order.number, actor="staff:1")  # and the process dies right after commit
    assert shipped.status == services.OrderStatus.SHIPPED
    assert payment_get(payment_id=shipped.payment_id).amount_captured == 0, "not charged yet"
    assert sorted(outbox.undelivered()) == [
        ("orders.order.shipped.v1", "webhooks.order_shipped"),
        ("orders.shipment.shipped.v1", "orders.send_shipment_email"),
        ("payments.payment.capture.v1", "payments.capture_payment"),
    ]
    assert outbox.events("orders.order.shipped.v1"), "the event was written with the status"

    assert process_dies_after_commit.recover() == 3, "the capture, the customer's email and webhooks' order.shipped"
    assert len([m for m in mail.outbox if "on its way" in m.subject]) == 1
    assert payment_get(payment_id=shipped.payment_id).amount_captured == shipped.total
    assert bus.sweep(now=timezone.now() + timedelta(days=1)) == 0
    assert Transaction.objects.filter(kind="capture").count() == 1, "captured once"
    assert len([m for m in mail.outbox if "on its way" in m.subject]) == 1, "told once"


def test_cancelling_with_the_process_killed_after_commit_still_returns_stock_and_money(
    kettle, process_dies_after_commit
):
    order = place(kettle, 2, key="cancel-crash")
    pay(order)
    assert stock(kettle) == (3, 0)
    process_dies_after_commit.begin()
    services.order_cancel(number=order.number, actor="customer:1")  # the process dies after the commit
    assert payment_get(payment_id=order_payment(order)).status == "authorized", "the money is still held"
    assert stock(kettle) == (3, 0)

    assert process_dies_after_commit.recover() == 5, (
        "the release of the stock, the void, the customer's email, webhooks' order.cancelled and recommendations' "
        "ledger"
    )
    assert len([m for m in mail.outbox if "is cancelled" in m.subject]) == 1
    assert payment_get(payment_id=order_payment(order)).status == "voided"
    assert stock(kettle) == (5, 0)
    assert Transaction.objects.filter(kind="void").count() == 1


def redeliver(event_id, consumer: str) -> None:
    """The same event handed to the same subscriber again, as after a lost acknowledgement."""
    alias = outbox.alias_of(event_id)
    Delivery.objects.using(alias).filter(event_id=event_id, consumer=consumer).update(status="pending")
    bus.handle(event_id, consumer, using=alias)
    assert Delivery.objects.using(alias).get(event_id=event_id, consumer=consumer).status == "done"


def order_payment(order: services.OrderInfo) -> int:
    return Order.objects.values_list("payment_id", flat=True).get(number=order.number)


def test_paid_after_the_hold_lapsed_and_the_stock_sold_out_the_order_is_cancelled_and_voided_once(kettle):
    late = place(kettle, 5, key="late")
    assert reservations_expire(now=timezone.now() + timedelta(hours=1)) == 1, "the hold lapsed while paying"
    rival = place(kettle, 5, key="rival")
    pay(rival)
    assert stock(kettle) == (0, 0)

    pay(late)  # the bank says yes, but the goods are gone

    info = services.order_find(number=late.number)
    assert info.status == services.OrderStatus.CANCELLED
    assert info.history[-1].note == "Sold out while the payment was made; not charged"
    payment = payment_get(payment_id=info.payment_id)
    assert payment.status == "voided"
    assert stock(kettle) == (0, 0), "the rival's sale stands; nothing oversold"
    assert services.order_find(number=rival.number).status == services.OrderStatus.PAID

    confirmed = [m.subject for m in mail.outbox]
    assert [s for s in confirmed if late.number in s] == [f"Northwind Goods: order {late.number} is cancelled"], (
        "no confirmation for an order that could not be sold: the customer hears it is cancelled"
    )
    assert [s for s in confirmed if rival.number in s], "the rival's order was confirmed"
    failed = outbox.events("catalog.reservation.failed.v1")
    assert len(failed) == 1
    paid = outbox.events("orders.order.paid.v1")[0]
    cancel = outbox.events("payments.payment.cancel.v1")[0]
    redeliver(failed[0]["id"], "orders.cancel_sold_out_order")  # each delivered a second time
    redeliver(paid["id"], "orders.send_order_confirmation")
    redeliver(cancel["id"], "payments.cancel_payment")
    assert [m.subject for m in mail.outbox] == confirmed
    assert Transaction.objects.filter(kind="void").count() == 1, "voided once"
    assert [h.to_status for h in services.order_find(number=late.number).history].count("cancelled") == 1


def test_paid_after_the_hold_lapsed_with_stock_left_the_stock_is_taken_again_and_sold(kettle):
    order = place(kettle, 2, key="slow-payer")
    reservations_expire(now=timezone.now() + timedelta(hours=1))
    assert stock(kettle) == (5, 0)
    pay(order)
    assert services.order_find(number=order.number).status == services.OrderStatus.PAID
    assert stock(kettle) == (3, 0), "sold after all"
    assert list(Reservation.objects.values_list("key", "status")) == [("order:slow-payer", "committed")]
    services.order_cancel(number=order.number, actor="customer:1")
    assert stock(kettle) == (5, 0), "cancelling returns what was sold the second time"


def test_a_sale_request_arriving_after_the_cancellation_sells_nothing(kettle, process_dies_after_commit):
    """The order was paid, but the process died before the stock was sold; its hold then lapsed and the order was
    cancelled. When the sweep finally delivers the sale, the closed hold is not taken again."""
    order = place(kettle, 2, key="dead-process")
    process_dies_after_commit.begin()
    pay(order)
    services.order_mark_paid(number=order.number, payment_id=order_payment_id(order.number))
    process_dies_after_commit.monkeypatch.undo()  # a new process: later commits are delivered again
    assert ("catalog.reservation.commit.v1", "catalog.commit_reservation") in outbox.undelivered()

    assert reservations_expire(now=timezone.now() + timedelta(hours=1)) == 1
    services.order_cancel(number=order.number, actor="customer:1")
    assert process_dies_after_commit.recover() >= 1  # the sweep delivers what the dead process left

    assert stock(kettle) == (5, 0), "nothing sold for a cancelled order"
    assert Reservation.objects.get(key="order:dead-process").status == "released"
    assert services.order_find(number=order.number).status == services.OrderStatus.CANCELLED
    assert payment_get(payment_id=order_payment_id(order.number)).status == "voided"
    assert outbox.undelivered() == []


def order_payment_id(number: str) -> int:
    from payments.models import Payment

    return Payment.objects.get(reference=number).pk


def test_refund_through_the_state_machine_refunds_the_money(kettle):
    order = place(kettle, key="refund")
    pay(order)
    services.order_ship(number=order.number, actor="staff:1")
    refunded = services.order_refund(number=order.number, actor="staff:1", note="Parcel lost")
    assert refunded.status == services.OrderStatus.REFUNDED
    payment = payment_get(payment_id=refunded.payment_id)
    assert payment.amount_refunded == payment.amount_captured == refunded.total
    with pytest.raises(services.IllegalTransition):
        services.order_refund(number=order.number, actor="staff:1")
    assert Transaction.objects.filter(kind="refund").count() == 1


def test_account_deletion_anonymises_the_customers_orders(kettle):
    from accounts.services import user_delete
    from tests.factories import UserFactory

    user = UserFactory(email="grace@example.com")
    order = place(kettle, key="grace", user_id=user.pk)
    other = place(kettle, key="someone-else")
    user_delete(user_id=user.pk)
    row = Order.objects.get(number=order.number)
    assert row.user_id is None
    assert "grace" not in row.email
    assert "full_name" not in row.shipping_address
    assert "line1" not in row.shipping_address
    assert row.shipping_address["country"] == "GB", "what the books need stays"
    assert Order.objects.get(number=other.number).email == "ada@example.com", "other orders untouched"
    assert Delivery.objects.filter(event_name="accounts.user.deleted.v1").exclude(status="done").count() == 0
