"""Orders: placing with reservations, the payment's outcome, the lifecycle, cancelling, confirmation email."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import Sum

from catalog.models import StockItem
from catalog.services import OutOfStock
from kernel import bus
from orders import services
from orders.models import Order, OrderLine
from payments.gateways.test_gateway import TestGateway
from payments.models import TestGatewayCharge
from payments.services import notification_receive, payment_authorize, payment_get
from tests import outbox
from tests.concurrency import race
from tests.factories import make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
ADDRESS = {"full_name": "Ada Lovelace", "line1": "12 St James's Square", "postal_code": "SW1Y 4JH",
           "city": "London", "country": "GB"}  # fmt: skip


@pytest.fixture
def kettle():
    variants = [{"options": {"Colour": "Copper"}, "price": "30.00", "stock": 5}]
    return make_product("Copper Kettle", make_category("Kitchen"), variants=variants).variants.get()


def stock(variant) -> tuple[int, int]:
    item = StockItem.objects.get(variant=variant)
    return item.on_hand, item.reserved


def place(variant, quantity=1, key="checkout-1", method="standard", **kw) -> services.OrderInfo:
    return services.order_place(idempotency_key=key, lines=[(variant.pk, quantity)], shipping_method=method,
                                shipping_address=ADDRESS, email="ada@example.com", **kw)  # fmt: skip


def pay(order: services.OrderInfo, card: str = "4242424242424242") -> None:
    payment = payment_authorize(reference=order.number, amount=order.total, currency=order.currency,
                                idempotency_key=f"pay:{order.number}", return_url="http://testserver/r/",
                                notify_url="http://testserver/payments/notify/test/")  # fmt: skip
    services.order_attach_payment(number=order.number, payment_id=payment.id)
    charge = TestGatewayCharge.objects.get(token=payment.redirect_url.rstrip("/").rsplit("/", 1)[1])
    TestGateway().pay(charge, card)
    body, headers = TestGateway().notification(charge)
    notification_receive(gateway="test", body=body, headers=headers)


def test_pricing_with_shipping_tax_and_free_delivery(kettle, settings):
    one = services.order_quote(lines=[(kettle.pk, 1)])
    assert (one.subtotal, one.shipping.price, one.total) == (Decimal("30.00"), Decimal("4.90"), Decimal("34.90"))
    assert one.tax == Decimal("5.82"), "20 % VAT included in 34.90"
    two = services.order_quote(lines=[(kettle.pk, 2)], shipping_method="standard")
    assert two.shipping.price == Decimal("0"), "free above 50"
    assert services.order_quote(lines=[(kettle.pk, 2)], shipping_method="express").total == Decimal("69.90")
    settings.SHOP_PRICES_INCLUDE_TAX = False
    net = services.order_quote(lines=[(kettle.pk, 1)])
    assert (net.tax, net.total) == (Decimal("6.98"), Decimal("41.88"))


def test_placing_reserves_stock_and_snapshots_the_lines(kettle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(kettle, 2)
    assert order.status == "pending_payment"
    assert order.number.startswith("NW-")
    assert stock(kettle) == (5, 2)
    line = OrderLine.objects.get()
    assert (line.sku, line.name, line.variant_label, line.unit_price, line.quantity) == (
        kettle.sku, "Copper Kettle", "Copper", Decimal("30.00"), 2)  # fmt: skip
    type(kettle).objects.filter(pk=kettle.pk).update(price=Decimal("99.00"))
    assert services.order_find(number=order.number).lines[0].unit_price == Decimal("30.00"), "a snapshot"
    assert place(kettle, 2).number == order.number, "placing twice with one key gives one order"
    assert stock(kettle) == (5, 2)
    assert len(outbox.events("orders.order.placed.v1")) == 1


def test_paid_order_sells_its_stock_and_is_confirmed_once(kettle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(kettle, 2)
    with django_capture_on_commit_callbacks(execute=True):
        pay(order)
    assert services.order_find(number=order.number).status == "paid"
    assert stock(kettle) == (3, 0)
    assert len(mail.outbox) == 1
    assert order.number in mail.outbox[0].subject
    assert mail.outbox[0].alternatives, "HTML and text"
    event_id = outbox.events("orders.order.paid.v1")[0]["id"]
    bus.handle(
        event_id, "orders.send_order_confirmation", using=outbox.alias_of(event_id)
    )  # delivered again, say after a lost acknowledgement
    assert len(mail.outbox) == 1, "exactly one confirmation per order"


def test_failed_payment_keeps_the_order_awaiting_payment_until_it_expires(kettle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(kettle, 2)
    with django_capture_on_commit_callbacks(execute=True):
        pay(order, "4000000000000002")
    info = services.order_find(number=order.number)
    assert info.status == "pending_payment", "the customer may pay again"
    assert info.payment_failed
    assert info.history[-1].note.startswith("Payment failed: Your card was declined")
    assert stock(kettle) == (5, 2), "still held"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.orders_expire_unpaid(older_than_minutes=-1) == 1
    assert services.order_find(number=order.number).status == "cancelled"
    assert stock(kettle) == (5, 0), "released when the reservation expires"


def test_illegal_transitions_are_refused_and_history_says_who_and_when(kettle):
    order = place(kettle)
    with pytest.raises(services.IllegalTransition):
        services.order_ship(number=order.number, actor="staff:1")
    with pytest.raises(services.IllegalTransition):
        services.order_deliver(number=order.number, actor="staff:1")
    with pytest.raises(services.IllegalTransition):
        services.order_refund(number=order.number, actor="staff:1")
    services.order_cancel(number=order.number, actor="staff:7")
    services.order_mark_paid(number=order.number, payment_id=12345)  # too late: refused quietly, money given back
    with pytest.raises(services.IllegalTransition):
        services.order_start_fulfilment(number=order.number, actor="staff:1")
    info = services.order_find(number=order.number)
    assert info.status == services.OrderStatus.CANCELLED
    assert [(h.from_status, h.to_status, h.actor) for h in info.history] == [
        ("", "pending_payment", "guest"), ("pending_payment", "cancelled", "staff:7")]  # fmt: skip
    assert not hasattr(services, "order_transition"), "no generic transition in the public face"
    assert all(h.at for h in info.history)


def test_cancel_after_payment_returns_stock_and_voids_then_shipping_captures(
    kettle, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = place(kettle, 2, key="c1")
        second = place(kettle, 1, key="c2")
    with django_capture_on_commit_callbacks(execute=True):
        pay(first)
        pay(second)
    assert stock(kettle) == (2, 0)
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = services.order_cancel(number=first.number, actor="customer:1")
    assert cancelled.status == "cancelled"
    assert stock(kettle) == (4, 0), "back on the shelf"
    assert payment_get(payment_id=cancelled.payment_id).status == "voided"

    with django_capture_on_commit_callbacks(execute=True):
        shipped = services.order_ship(number=second.number, actor="staff:1")
    assert shipped.status == "shipped"
    assert payment_get(payment_id=shipped.payment_id).amount_captured == Decimal("34.90"), "charged when it ships"
    with pytest.raises(services.IllegalTransition, match="can no longer be cancelled"):
        services.order_cancel(number=second.number, actor="customer:1")


def test_customers_see_only_their_own_orders(kettle):
    from tests.factories import UserFactory

    alice, bob = UserFactory(), UserFactory()
    order = place(kettle, user_id=alice.pk)
    assert services.order_get(number=order.number, user_id=alice.pk).number == order.number
    for who in ({"user_id": bob.pk}, {"access_token": "guess"}, {}):
        with pytest.raises(services.OrderNotFound):
            services.order_get(number=order.number, **who)
        with pytest.raises(services.OrderNotFound):
            services.order_cancel(number=order.number, actor="x", **(who or {"user_id": bob.pk}))
    assert services.order_get(number=order.number, access_token=order.access_token).number == order.number
    assert [o.number for o in services.orders_for_customer(user_id=alice.pk)] == [order.number]


def test_unpaid_orders_expire_and_free_their_stock(kettle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = place(kettle, 3)
    assert services.orders_expire_unpaid() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.orders_expire_unpaid(older_than_minutes=-1) == 1
    assert services.order_find(number=order.number).status == "cancelled"
    assert stock(kettle) == (5, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_buyers_of_the_last_five_units(kettle):
    """Real threads on PostgreSQL: exactly 5 orders, stock 0, on hand + sold conserved, no deadlock."""

    def buy(i: int) -> str:
        pay(place(kettle, 1, key=f"buyer-{i}"))
        return "bought"

    outcomes = race(buy, refusals=(OutOfStock,))
    assert outcomes.count("bought") == 5, outcomes
    assert outcomes.count("Copper Kettle has just sold out.") == 15
    # handlers ran after commit in each thread (tasks are in-process): every paid order sold its unit
    assert Order.objects.filter(status="paid").count() == 5
    sold = OrderLine.objects.filter(order__status="paid").aggregate(n=Sum("quantity"))["n"]
    on_hand, reserved = stock(kettle)
    assert (on_hand, reserved, sold) == (0, 0, 5)
    assert on_hand + sold == 5, "conserved"


def test_staff_ship_from_the_admin_and_the_customer_is_charged(client, kettle, django_capture_on_commit_callbacks):
    from tests.factories import SuperuserFactory

    with django_capture_on_commit_callbacks(execute=True):
        order = place(kettle)
    with django_capture_on_commit_callbacks(execute=True):
        pay(order)
    staff = SuperuserFactory()
    client.force_login(staff)
    url = "/admin/orders/order/"
    pk = Order.objects.get().pk
    for action, expected in [
        ("ship", "shipped; the payment is being captured"),
        ("deliver", "delivered"),
        ("cancel", "can no longer"),
    ]:
        with django_capture_on_commit_callbacks(execute=True):
            page = client.post(url, {"action": action, "_selected_action": [pk]}, follow=True).content.decode()
        assert expected in page, page[page.find("messagelist") :][:600]
    info = services.order_find(number=order.number)
    assert info.status == "delivered"
    assert info.history[-1].actor == f"staff:{staff.pk}"
    assert payment_get(payment_id=info.payment_id).amount_captured == info.total
    assert client.get(f"{url}{pk}/change/").status_code == 200
