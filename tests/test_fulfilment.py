"""Fulfilment: parcels of some or all lines, each capturing its part of the payment, tracking emails, carriers'
signed delivery updates, automatic fulfilment."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.core import mail

from kernel import bus
from orders import carriers, services
from orders.events import OrderPaid
from orders.handlers import fulfil_automatically
from orders.models import Shipment
from payments.gateways import GatewayTimeout
from payments.gateways.test_gateway import TestGateway
from payments.models import Transaction
from payments.services import payment_get, payments_resolve_pending
from tests import outbox
from tests.factories import SuperuserFactory, make_category, make_product
from tests.test_orders import pay, place

pytestmark = [pytest.mark.modules, pytest.mark.django_db(transaction=True)]
SECRET = "carrier-test-secret"


@pytest.fixture
def basket():
    kitchen = make_category("Kitchen")
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 10}]).variants.get()
    mug = make_product("Stone Mug", kitchen, variants=[{"price": "8.00", "stock": 10}]).variants.get()
    return kettle, mug


def paid_order(basket, key="two-parcels") -> services.OrderInfo:
    from orders.services import order_place
    from tests.test_orders import ADDRESS

    kettle, mug = basket
    order = order_place(idempotency_key=key, lines=[(kettle.pk, 1), (mug.pk, 3)], shipping_method="standard",
                        shipping_address=ADDRESS, email="ada@example.com")  # fmt: skip
    pay(order)
    return services.order_find(number=order.number)


def line_of(order: services.OrderInfo, sku: str) -> services.OrderInfo:
    return next(line for line in order.lines if line.sku == sku)


def captured(order: services.OrderInfo) -> Decimal:
    return payment_get(payment_id=order.payment_id).amount_captured


def test_two_parcels_each_capture_their_part_and_the_customer_gets_each_tracking_link(basket):
    kettle, mug = basket
    order = paid_order(basket)
    assert order.total == Decimal("54.00"), "30 + 3 x 8, free delivery above 50"
    kettle_line, mug_line = line_of(order, kettle.sku), line_of(order, mug.sku)

    first = services.shipment_create(
        number=order.number,
        carrier="dhl",
        actor="staff:1",
        lines=[(kettle_line.id, 1), (mug_line.id, 1)],
        tracking_number="JD0001",
    )
    assert first.tracking_url == "https://www.dhl.com/en/express/tracking.html?AWB=JD0001"
    assert services.order_find(number=order.number).status == services.OrderStatus.FULFILLING
    assert captured(order) == 0, "packing charges nothing"

    services.shipment_ship(number=order.number, shipment=first.number, actor="staff:1")
    now = services.order_find(number=order.number)
    assert now.status == services.OrderStatus.PARTIALLY_SHIPPED
    assert captured(order) == Decimal("38.00"), "the kettle and one mug"
    assert (line_of(now, kettle.sku).quantity_shipped, line_of(now, mug.sku).quantity_shipped) == (1, 1)
    emails = [m for m in mail.outbox if "on its way" in m.subject]
    assert len(emails) == 1
    assert "https://www.dhl.com/en/express/tracking.html?AWB=JD0001" in emails[0].body
    assert "https://www.dhl.com/en/express/tracking.html?AWB=JD0001" in emails[0].alternatives[0][0]

    second = services.shipment_create(number=order.number, carrier="ups", actor="staff:1", tracking_number="1Z99")
    assert [(line.sku, line.quantity) for line in second.lines] == [(mug.sku, 2)], "what was left"
    services.shipment_ship(number=order.number, shipment=second.number, actor="staff:1")
    now = services.order_find(number=order.number)
    assert now.status == services.OrderStatus.SHIPPED
    assert captured(order) == order.total, "the last parcel captures the rest"
    assert Transaction.objects.filter(kind="capture", result="success").count() == 2
    assert len([m for m in mail.outbox if "on its way" in m.subject]) == 2
    assert [s.capture_amount for s in now.shipments] == [Decimal("38.00"), None]

    services.shipment_deliver(number=order.number, shipment=1, actor="carrier:dhl")
    assert services.order_find(number=order.number).status == services.OrderStatus.PARTIALLY_DELIVERED
    services.shipment_deliver(number=order.number, shipment=2, actor="carrier:ups")
    done = services.order_find(number=order.number)
    assert done.status == services.OrderStatus.DELIVERED
    assert [h.to_status for h in done.history] == ["pending_payment", "paid", "fulfilling", "partially_shipped",
                                                   "shipped", "partially_delivered", "delivered"]  # fmt: skip
    assert outbox.undelivered() == []


def test_shipping_twice_changes_nothing_and_charges_once(basket):
    order = paid_order(basket)
    shipped = services.order_ship(number=order.number, actor="staff:1")
    assert shipped.status == services.OrderStatus.SHIPPED
    again = services.order_ship(number=order.number, actor="staff:1")  # a second click, or two staff at once
    assert again.status == services.OrderStatus.SHIPPED
    services.shipment_ship(number=order.number, shipment=1, actor="staff:2")
    assert len(again.shipments) == 1
    assert Transaction.objects.filter(kind="capture").count() == 1
    assert captured(order) == order.total
    assert len([m for m in mail.outbox if "on its way" in m.subject]) == 1


def test_a_parcel_cannot_hold_more_than_is_left_and_an_unpaid_order_cannot_ship(basket):
    kettle, _ = basket
    order = paid_order(basket)
    kettle_line = line_of(order, kettle.sku)
    with pytest.raises(services.ShipmentError, match="only 1 of"):
        services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(kettle_line.id, 2)])
    services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(kettle_line.id, 1)])
    with pytest.raises(services.ShipmentError, match="only 0 of"):
        services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(kettle_line.id, 1)])
    with pytest.raises(services.ShipmentError, match="has no line"):
        services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(999999, 1)])
    unpaid = place(kettle, key="unpaid")
    with pytest.raises(services.IllegalTransition, match="cannot be shipped"):
        services.shipment_create(number=unpaid.number, carrier="dhl", actor="s")


def test_a_capture_that_times_out_waits_and_is_retried_charging_once_the_right_amount(basket, monkeypatch):
    order = paid_order(basket)
    real_capture = TestGateway.capture

    def slow_bank(self, **kwargs):
        raise GatewayTimeout("the bank did not answer in time")

    monkeypatch.setattr(TestGateway, "capture", slow_bank)
    services.order_ship(number=order.number, actor="staff:1")
    assert services.order_find(number=order.number).status == services.OrderStatus.SHIPPED, "the parcel is gone"
    assert captured(order) == 0
    pending = Transaction.objects.get(kind="capture")
    assert pending.result == "pending", "the capture waits"

    monkeypatch.setattr(TestGateway, "capture", real_capture)  # the bank is back
    Transaction.objects.filter(pk=pending.pk).update(created_at=pending.created_at.replace(year=2000))
    payments_resolve_pending()
    payments_resolve_pending()  # the periodic task runs again: nothing more happens
    assert captured(order) == order.total
    assert Transaction.objects.filter(kind="capture").count() == 1
    assert Transaction.objects.get(kind="capture").result == "success"


# ---------------------------------------------------------------- carriers' signed updates


@pytest.fixture
def carrier_secret(settings):
    settings.ORDERS_CARRIER_SECRETS = {"dhl": SECRET}


def shipped_parcel(basket) -> services.OrderInfo:
    order = paid_order(basket)
    parcel = services.shipment_create(number=order.number, carrier="dhl", actor="s", tracking_number="JD0002")
    services.shipment_ship(number=order.number, shipment=parcel.number, actor="s")
    return order


def post(client, body: bytes, header: str, carrier: str = "dhl"):
    return client.post(f"/orders/carrier/{carrier}/", body, content_type="application/json",
                       headers={"Carrier-Signature": header})  # fmt: skip


def update(event_id: str = "evt_1", tracking: str = "JD0002", status: str = "delivered") -> bytes:
    return json.dumps({"id": event_id, "tracking_number": tracking, "status": status}).encode()


def test_a_signed_delivery_update_delivers_the_parcel_once(client, basket, carrier_secret):
    order = shipped_parcel(basket)
    body = update()
    response = post(client, body, carriers.sign("dhl", body))
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "applied"}
    assert services.order_find(number=order.number).status == services.OrderStatus.DELIVERED
    again = post(client, body, carriers.sign("dhl", body))  # the carrier sends it again
    assert again.json() == {"status": "duplicate"}
    history = services.order_find(number=order.number).history
    assert [h.to_status for h in history].count("delivered") == 1
    assert history[-1].actor == "carrier:dhl"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("wrong secret", 401, "bad_signature"),
        ("no signature", 401, "bad_signature"),
        ("stale", 400, "stale"),
        ("not json", 400, "malformed"),
        ("unknown status", 400, "malformed"),
        ("unknown parcel", 404, "unknown_parcel"),
        ("unknown carrier", 404, "unknown_carrier"),
        ("too large", 413, "too_large"),
    ],
)
def test_bad_carrier_updates_get_a_json_error_and_change_nothing(client, basket, carrier_secret, case, status, code):
    order = shipped_parcel(basket)
    body, carrier = update(), "dhl"
    header = carriers.sign("dhl", body)
    if case == "wrong secret":
        header = f"t={int(time.time())},v1={carriers.signature('not-the-secret', int(time.time()), body)}"
    elif case == "no signature":
        header = ""
    elif case == "stale":
        header = carriers.sign("dhl", body, timestamp=int(time.time()) - 3600)
    elif case == "not json":
        body = b"<xml>delivered</xml>"
        header = carriers.sign("dhl", body)
    elif case == "unknown status":
        body = update(status="vanished")
        header = carriers.sign("dhl", body)
    elif case == "unknown parcel":
        body = update(tracking="NOPE")
        header = carriers.sign("dhl", body)
    elif case == "unknown carrier":
        carrier = "pigeon"
    elif case == "too large":
        body = json.dumps({"id": "x", "tracking_number": "JD0002", "status": "delivered", "pad": "x" * 20000}).encode()
        header = carriers.sign("dhl", body)
    response = post(client, body, header, carrier)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert services.order_find(number=order.number).status == services.OrderStatus.SHIPPED


# ---------------------------------------------------------------- automatic fulfilment


@pytest.fixture
def auto_fulfil(settings):
    settings.ORDERS_AUTO_FULFIL = True
    bus.subscribe(OrderPaid, idempotent=True, key="orders.fulfil_automatically", queue="fulfilment")(
        fulfil_automatically
    )
    yield
    bus.unsubscribe(OrderPaid, "orders.fulfil_automatically")


def test_automatic_fulfilment_ships_a_paid_order_once_with_a_tracking_number(basket, auto_fulfil):
    order = paid_order(basket)
    shipped = services.order_find(number=order.number)
    assert shipped.status == services.OrderStatus.SHIPPED
    (parcel,) = shipped.shipments
    assert parcel.tracking_number.startswith("NW")
    assert parcel.tracking_url.endswith(parcel.tracking_number)
    assert captured(order) == order.total
    assert services.orders_auto_fulfil(number=order.number) is False, "a second delivery of OrderPaid: nothing"
    assert Shipment.objects.count() == 1
    assert Transaction.objects.filter(kind="capture").count() == 1


# ---------------------------------------------------------------- staff


def test_staff_pack_a_parcel_of_chosen_items_then_ship_and_deliver_it_from_the_admin(client, basket):
    kettle, mug = basket
    order = paid_order(basket)
    client.force_login(SuperuserFactory())
    pk = services.order_find(number=order.number).id
    page = client.get(f"/admin/orders/order/{pk}/change/").content.decode()
    assert "New parcel" in page
    form = client.get(f"/admin/orders/order/{pk}/parcel/").content.decode()
    assert "3 left to ship" in form
    kettle_line, mug_line = line_of(order, kettle.sku), line_of(order, mug.sku)
    refused = client.post(
        f"/admin/orders/order/{pk}/parcel/",
        {f"line_{kettle_line.id}": "0", f"line_{mug_line.id}": "0", "carrier": "dpd", "tracking_number": "09"},
    )
    assert "Choose at least one item" in refused.content.decode()
    response = client.post(f"/admin/orders/order/{pk}/parcel/", {
        f"line_{kettle_line.id}": "1", f"line_{mug_line.id}": "0", "carrier": "dpd", "tracking_number": "0912"},
        follow=True)  # fmt: skip
    assert "parcel 1 packed" in response.content.decode()
    assert services.order_find(number=order.number).status == services.OrderStatus.FULFILLING
    client.post(f"/admin/orders/order/{pk}/parcel/1/ship/")
    assert services.order_find(number=order.number).status == services.OrderStatus.PARTIALLY_SHIPPED
    assert captured(order) == Decimal("30.00")
    client.post(f"/admin/orders/order/{pk}/parcel/1/deliver/")
    now = services.order_find(number=order.number)
    assert now.status == services.OrderStatus.PARTIALLY_DELIVERED
    assert now.shipments[0].tracking_url == "https://tracking.dpd.de/status/en_US/parcel/0912"


def test_a_late_capture_moves_the_orders_updated_at_for_an_erp_syncing_by_updated_since(basket, monkeypatch):
    from orders.models import Order

    order = paid_order(basket, key="late-capture")
    real_capture = TestGateway.capture
    monkeypatch.setattr(TestGateway, "capture", lambda self, **kwargs: (_ for _ in ()).throw(GatewayTimeout("slow")))
    services.order_ship(number=order.number, actor="staff:1")
    shipped_at = Order.objects.get(number=order.number).updated_at

    monkeypatch.setattr(TestGateway, "capture", real_capture)
    pending = Transaction.objects.get(kind="capture")
    Transaction.objects.filter(pk=pending.pk).update(created_at=pending.created_at.replace(year=2000))
    payments_resolve_pending()
    assert captured(order) == order.total
    assert Order.objects.get(number=order.number).updated_at > shipped_at, "the order's payment figures moved"
