"""Returns and refunds: three returns on one order, with and without restocking, partial, full and goodwill
refunds; every figure right after each step."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import StockItem
from orders import services
from orders.models import Shipment
from payments.services import payment_get
from tests import outbox
from tests.factories import SuperuserFactory, make_category, make_product
from tests.test_orders import ADDRESS, pay

pytestmark = [pytest.mark.modules, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def delivered():
    """An order of 2 kettles (30.00) and 4 mugs (8.00) with express delivery (9.90), shipped in two parcels and
    delivered: 101.90 captured."""
    kitchen = make_category("Kitchen")
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 10}]).variants.get()
    mug = make_product("Stone Mug", kitchen, variants=[{"price": "8.00", "stock": 10}]).variants.get()
    order = services.order_place(idempotency_key="three-returns", lines=[(kettle.pk, 2), (mug.pk, 4)],
                                 shipping_method="express", shipping_address=ADDRESS, email="ada@example.com",
                                 user_id=7)  # fmt: skip
    pay(order)
    order = services.order_find(number=order.number)
    k, m = (next(line for line in order.lines if line.sku == v.sku) for v in (kettle, mug))
    services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(k.id, 2), (m.id, 2)],
                             tracking_number="JD0001")  # fmt: skip
    services.shipment_ship(number=order.number, shipment=1, actor="s")
    services.shipment_create(number=order.number, carrier="ups", actor="s", tracking_number="1Z0002")
    services.shipment_ship(number=order.number, shipment=2, actor="s")
    services.order_deliver(number=order.number, actor="carrier")
    return services.order_find(number=order.number), kettle, mug, k.id, m.id


def on_hand(variant) -> int:
    return StockItem.objects.get(variant=variant).on_hand


def figures(number: str) -> tuple:
    order = services.order_find(number=number)
    lines = {line.sku: (line.quantity, line.quantity_shipped, line.quantity_delivered, line.quantity_returned,
                        line.quantity_refunded) for line in order.lines}  # fmt: skip
    return order.status, order.amount_refunded, lines


def test_three_returns_on_one_order_keep_every_figure_right(delivered):
    order, kettle, mug, kettle_line, mug_line = delivered
    number = order.number
    assert order.total == Decimal("101.90")
    assert payment_get(payment_id=order.payment_id).amount_captured == Decimal("101.90")
    assert (on_hand(kettle), on_hand(mug)) == (8, 6)
    assert {line.sku: line.returnable for line in order.lines} == {kettle.sku: 2, mug.sku: 4}

    # 1: one kettle arrived damaged; it does not go back on sale; refunded its price
    first = services.return_request(number=number, lines=[(kettle_line, 1)], reason="damaged", note="Dented lid",
                                    actor="customer:7", user_id=7)  # fmt: skip
    assert first.status == "requested"
    services.return_receive(number=number, ret=first.number, restock={kettle_line: False}, actor="staff:1")
    services.return_refund(number=number, ret=first.number, actor="staff:1")
    assert figures(number) == ("partially_returned", Decimal("30.00"),
                               {kettle.sku: (2, 2, 2, 1, 1), mug.sku: (4, 4, 4, 0, 0)})  # fmt: skip
    assert (on_hand(kettle), on_hand(mug)) == (8, 6), "a damaged kettle is not put back on sale"

    # 2: two mugs, no longer needed: back on sale, refunded in part (a restocking fee kept)
    second = services.return_request(number=number, lines=[(mug_line, 2)], reason="changed_mind",
                                     actor="customer:7", user_id=7)  # fmt: skip
    services.return_receive(number=number, ret=second.number, restock={mug_line: True}, actor="staff:1")
    assert (on_hand(kettle), on_hand(mug)) == (8, 8)
    assert figures(number)[1] == Decimal("30.00"), "received, not refunded yet: goods back without a refund"
    services.return_refund(number=number, ret=second.number, actor="staff:1", amount=Decimal("10.00"))
    assert figures(number) == ("partially_returned", Decimal("40.00"),
                               {kettle.sku: (2, 2, 2, 1, 1), mug.sku: (4, 4, 4, 2, 2)})  # fmt: skip

    # 3: everything left, with the delivery charge
    left = {line.sku: line.returnable for line in services.order_find(number=number).lines}
    assert left == {kettle.sku: 1, mug.sku: 2}
    third = services.return_request(number=number, lines=[(kettle_line, 1), (mug_line, 2)], reason="other",
                                    actor="customer:7", user_id=7)  # fmt: skip
    services.return_receive(number=number, ret=third.number, restock={kettle_line: True, mug_line: True},
                            actor="staff:1")  # fmt: skip
    services.return_refund(number=number, ret=third.number, actor="staff:1", include_shipping=True)
    assert figures(number) == ("returned", Decimal("95.90"),
                               {kettle.sku: (2, 2, 2, 2, 2), mug.sku: (4, 4, 4, 4, 4)})  # fmt: skip
    assert (on_hand(kettle), on_hand(mug)) == (9, 10)

    # and a goodwill refund of what is left: the order is refunded in full
    services.order_refund_amount(number=number, amount=Decimal("6.00"), actor="staff:1", note="Sorry for the wait")
    status, refunded, _ = figures(number)
    assert (status, refunded) == ("refunded", Decimal("101.90"))
    payment = payment_get(payment_id=order.payment_id)
    assert (payment.amount_captured, payment.amount_refunded, payment.status) == (
        Decimal("101.90"), Decimal("101.90"), "refunded")  # fmt: skip
    with pytest.raises(services.ReturnError, match="can still be refunded"):
        services.order_refund_amount(number=number, amount=Decimal("0.01"), actor="staff:1")
    info = services.order_find(number=number)
    assert [r.amount_refunded for r in info.returns] == [Decimal("30.00"), Decimal("10.00"), Decimal("55.90")]
    assert outbox.undelivered() == []


def test_a_return_cannot_ask_for_more_than_was_delivered_nor_come_too_late_nor_from_someone_else(delivered):
    order, _, _, kettle_line, _ = delivered
    with pytest.raises(services.ReturnError, match="up to 2"):
        services.return_request(number=order.number, lines=[(kettle_line, 3)], reason="other", actor="c", user_id=7)
    with pytest.raises(services.ReturnError, match="reason"):
        services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="bored", actor="c", user_id=7)
    with pytest.raises(services.OrderNotFound):
        services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="other", actor="c", user_id=8)
    guest = services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="other", actor="guest",
                                    access_token=order.access_token)  # fmt: skip
    assert guest.number == 1
    Shipment.objects.update(delivered_at=timezone.now() - timedelta(days=31))
    with pytest.raises(services.ReturnError, match="up to 0"):
        services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="other", actor="c", user_id=7)


def test_receiving_twice_restocks_once(delivered):
    order, kettle, _, kettle_line, _ = delivered
    ret = services.return_request(number=order.number, lines=[(kettle_line, 2)], reason="other", actor="c",
                                  user_id=7)  # fmt: skip
    for _ in range(2):
        services.return_receive(number=order.number, ret=ret.number, restock={kettle_line: True}, actor="s")
    assert on_hand(kettle) == 10
    assert figures(order.number)[2][kettle.sku][3] == 2


def test_staff_receive_and_refund_a_return_from_the_admin(client, delivered):
    order, kettle, _, kettle_line, _ = delivered
    ret = services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="damaged", actor="c",
                                  user_id=7)  # fmt: skip
    client.force_login(SuperuserFactory())
    page = client.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    assert f"Return {ret.number} (requested)" in page
    url = f"/admin/orders/order/{order.id}/return/{ret.number}/"
    assert "back to sale stock" in client.get(url).content.decode()
    client.post(url, {"receive": "1", f"restock_{kettle_line}": "on"})
    assert on_hand(kettle) == 9
    client.post(url, {"refund": "1", "amount": "", "include_shipping": ""})
    assert figures(order.number)[1] == Decimal("30.00")
    response = client.post(f"/admin/orders/order/{order.id}/refund/", {"amount": "500", "note": "Too much"})
    assert "can still be refunded" in response.content.decode()
    assert figures(order.number)[1] == Decimal("30.00")


def test_a_full_refund_from_the_payments_admin_refunds_the_order(client, delivered):
    order = delivered[0]
    client.force_login(SuperuserFactory())
    action = {"action": "refund_captured", "_selected_action": [order.payment_id]}
    response = client.post("/admin/payments/payment/", action, follow=True)
    assert response.status_code == 200
    status, refunded, _ = figures(order.number)
    assert (status, refunded) == ("refunded", order.total), "not left 'Delivered' for staff and customer"
    assert services.order_find(number=order.number).history[-1].actor == "payments"


def test_the_customer_sees_each_parcels_tracking_link_and_asks_for_a_return_from_the_order_page(client, delivered):
    order, kettle, _, kettle_line, mug_line = delivered
    page = client.get(f"/orders/{order.number}/?t={order.access_token}").content.decode()
    assert [parcel.tracking_number for parcel in order.shipments] == ["JD0001", "1Z0002"]
    for parcel in order.shipments:
        assert f"Track parcel {parcel.number}" in page
        assert parcel.tracking_url in page
    assert "Return items" in page
    refused = client.post(f"/orders/{order.number}/return/", {"t": order.access_token, f"return_{kettle_line}": "1"},
                          follow=True)  # fmt: skip
    assert "Choose a reason" in refused.content.decode()
    response = client.post(f"/orders/{order.number}/return/", {
        "t": order.access_token, f"return_{kettle_line}": "1", f"return_{mug_line}": "0", "reason": "damaged",
        "note": "<script>alert(1)</script>"}, follow=True)  # fmt: skip
    text = response.content.decode()
    assert "Return 1 is registered" in text
    assert "<script>alert(1)</script>" not in text
    (ret,) = services.order_find(number=order.number).returns
    assert [(line.sku, line.quantity) for line in ret.lines] == [(kettle.sku, 1)]
    assert client.post(f"/orders/{order.number}/return/", {"t": "guess", f"return_{kettle_line}": "1",
                                                           "reason": "damaged"}).status_code == 404  # fmt: skip
