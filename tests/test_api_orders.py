"""Orders' REST endpoints: scopes on every operation, the list's filters and its cost, the detail, and each action
doing exactly what the admin's action does (once: a repeat answers 409), refusing what it must with 400 or 409."""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import StockItem
from orders import services
from orders.models import Order, OrderLine, Return, ReturnLine, Shipment, ShipmentLine, StatusChange
from payments.models import Transaction
from payments.services import payment_get
from tests.api import client_with, error_code, key_client, key_client_and_key, make_key, other_scopes, revoked_client
from tests.factories import SuperuserFactory, make_category, make_product
from tests.test_orders import ADDRESS, pay

pytestmark = [pytest.mark.modules, pytest.mark.django_db(transaction=True)]
API = "/api/v1/orders/"


# ---------------------------------------------------------------- orders in every stage


@pytest.fixture
def goods():
    kitchen = make_category("Kitchen")
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 50}]).variants.get()
    mug = make_product("Stone Mug", kitchen, variants=[{"price": "8.00", "stock": 50}]).variants.get()
    return kettle, mug


STAGES = ("pending", "paid", "packed", "shipped", "delivered", "return_requested", "return_received")


def order_at(goods, stage: str, key: str, email: str = "ada@example.com", user_id: int | None = 7) -> str:
    """An order of one kettle (30.00) and three mugs (3 x 8.00), free delivery: 54.00; moved to `stage` by the
    services, as the shop and staff move it. Returns its number."""
    kettle, mug = goods
    order = services.order_place(
        idempotency_key=key,
        lines=[(kettle.pk, 1), (mug.pk, 3)],
        shipping_method="standard",
        shipping_address=ADDRESS,
        email=email,
        user_id=user_id,
    )
    number = order.number
    steps = STAGES[1 : STAGES.index(stage) + 1]
    for step in steps:
        if step == "paid":
            pay(order)
        elif step == "packed":
            services.shipment_create(number=number, carrier="dhl", actor="staff:1", tracking_number=f"JD-{key}")
        elif step == "shipped":
            services.shipment_ship(number=number, shipment=1, actor="staff:1")
        elif step == "delivered":
            services.shipment_deliver(number=number, shipment=1, actor="carrier:dhl")
        elif step == "return_requested":
            services.return_request(
                number=number, lines=[(line_id(number, kettle.sku), 1)], reason="damaged", actor="customer:7", user_id=7
            )
        elif step == "return_received":
            services.return_receive(number=number, ret=1, restock={line_id(number, kettle.sku): True}, actor="s")
    return number


def line_id(number: str, sku: str) -> int:
    return OrderLine.objects.get(order__number=number, sku=sku).pk


def state(number: str) -> dict:
    """Everything an action may change on an order and its payment, without what differs between two orders
    (numbers, ids, tracking numbers, who did it, when)."""
    order = Order.objects.get(number=number)
    payment = payment_get(payment_id=order.payment_id) if order.payment_id else None
    return {
        "status": order.status,
        "amount_refunded": order.amount_refunded,
        "total": order.total,
        "email": order.email,
        "lines": sorted(
            (
                li.sku,
                li.quantity,
                li.quantity_shipped,
                li.quantity_delivered,
                li.quantity_returned,
                li.quantity_refunded,
            )
            for li in order.lines.all()
        ),
        "shipments": [
            (
                s.number,
                s.status,
                s.carrier,
                bool(s.tracking_number),
                s.capture_amount,
                sorted((sl.line.sku, sl.quantity) for sl in s.lines.all()),
            )
            for s in order.shipments.order_by("number")
        ],
        "returns": [
            (
                r.number,
                r.status,
                r.reason,
                r.amount_refunded,
                sorted((rl.line.sku, rl.quantity, rl.restock, rl.refunded) for rl in r.lines.all()),
            )
            for r in order.returns.order_by("number")
        ],
        "history": [(h.from_status, h.to_status, h.note.split(":")[0]) for h in order.history.all()],
        "payment": payment and (payment.status, payment.amount_captured, payment.amount_refunded),
        "transactions": sorted(
            Transaction.objects.filter(payment_id=order.payment_id).values_list("kind", "amount", "result")
        ),
    }


def stock() -> dict[int, tuple[int, int]]:
    return {s.variant_id: (s.on_hand, s.reserved) for s in StockItem.objects.all()}


def moved(before: dict, after: dict) -> dict:
    return {v: (after[v][0] - before[v][0], after[v][1] - before[v][1]) for v in before}


def writer():
    return key_client("orders:write")


@pytest.fixture
def staff(client):
    client.force_login(SuperuserFactory())
    return client


# ---------------------------------------------------------------- every operation: scopes and keys

NOPE = "NW-NOPE2345"
OPERATIONS = [
    ("get", "/api/v1/orders/", "orders:read"),
    ("get", "/api/v1/orders/{number}/", "orders:read"),
    ("post", "/api/v1/orders/{number}/shipments/", "orders:write"),
    ("post", "/api/v1/orders/{number}/shipments/{shipment_number}/ship/", "orders:write"),
    ("post", "/api/v1/orders/{number}/shipments/{shipment_number}/deliver/", "orders:write"),
    ("post", "/api/v1/orders/{number}/ship/", "orders:write"),
    ("post", "/api/v1/orders/{number}/deliver/", "orders:write"),
    ("post", "/api/v1/orders/{number}/cancel/", "orders:write"),
    ("post", "/api/v1/orders/{number}/refund/", "orders:write"),
    ("post", "/api/v1/orders/{number}/returns/", "orders:write"),
    ("post", "/api/v1/orders/{number}/returns/{return_number}/receive/", "orders:write"),
    ("post", "/api/v1/orders/{number}/returns/{return_number}/refund/", "orders:write"),
]


def url(template: str, number: str = NOPE) -> str:
    return template.format(number=number, shipment_number=1, return_number=1)


def send(client, method: str, path: str, body=None, **headers):
    if method == "get":
        return client.get(path, **headers)
    return client.post(path, body if body is not None else {}, format="json", **headers)


@pytest.mark.django_db
def test_the_table_names_every_orders_operation_of_the_schema(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    documented = {
        (method, path, op["x-required-scope"])
        for path, item in schema["paths"].items()
        if path.startswith(API)
        for method, op in item.items()
    }
    assert documented == set(OPERATIONS)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template", "scope"), OPERATIONS)
def test_a_key_without_the_scope_gets_403_naming_it(method, template, scope):
    lacking = other_scopes(scope)
    assert lacking
    assert scope not in lacking
    response = send(key_client(*lacking), method, url(template))
    assert response.status_code == 403
    assert error_code(response) == "missing_scope"
    assert scope in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template", "scope"), OPERATIONS)
def test_a_revoked_key_gets_401(method, template, scope):
    response = send(revoked_client(scope), method, url(template))
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "template", "scope"), OPERATIONS)
def test_the_scope_lets_the_key_in_and_orders_write_reads_too(method, template, scope):
    for client in (key_client(scope), key_client("orders:write")):
        response = send(client, method, url(template))
        expected = 200 if template == "/api/v1/orders/" else 404  # no such order
        assert response.status_code == expected, response.content
        if expected == 404:
            assert error_code(response) == "not_found"


@pytest.mark.django_db
def test_reads_refuse_writes_and_actions_refuse_reads_with_405():
    client = key_client("orders:write")
    assert client.post(API, {}, format="json").status_code == 405
    assert client.delete(f"{API}{NOPE}/").status_code == 405
    assert client.get(f"{API}{NOPE}/cancel/").status_code == 405


# ---------------------------------------------------------------- the list


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [order["number"] for order in response.json()["results"]]


def test_the_list_filters_by_status_created_email_and_number(goods):
    paid = order_at(goods, "paid", "a", email="ada@example.com")
    pending = order_at(goods, "pending", "b", email="Bob@Example.com")
    shipped = order_at(goods, "shipped", "c", email="cy@example.com")
    now = timezone.now()
    for number, days in ((paid, 3), (pending, 2), (shipped, 1)):
        Order.objects.filter(number=number).update(created_at=now - timedelta(days=days))
    client = key_client("orders:read")

    assert numbers(client.get(API)) == [shipped, pending, paid], "newest first"
    assert numbers(client.get(API, {"status": "paid"})) == [paid]
    assert numbers(client.get(f"{API}?status=paid&status=shipped")) == [shipped, paid]
    assert numbers(client.get(API, {"email": "BOB@example.COM"})) == [pending]
    assert numbers(client.get(API, {"number": shipped})) == [shipped]
    between = {
        "created_after": (now - timedelta(days=2, hours=1)).isoformat(),
        "created_before": (now - timedelta(hours=12)).isoformat(),
    }
    assert numbers(client.get(API, between)) == [shipped, pending]
    assert numbers(client.get(API, {"ordering": "created_at"})) == [paid, pending, shipped]
    first = client.get(API, {"page_size": 2}).json()
    rest = client.get(first["next"]).json()
    assert [o["number"] for o in first["results"] + rest["results"]] == [shipped, pending, paid]
    assert rest["next"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"status": "lost"},
        {"created_after": "yesterday"},
        {"updated_since": "2024-13-01"},
        {"page_size": "many"},
        {"page_size": "0"},
        {"email": ""},
    ],
)
def test_bad_filter_values_get_400_naming_the_filter(query):
    response = key_client("orders:read").get(API, query)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(query)


def test_updated_since_sees_every_change_an_erp_must_sync(goods, staff):
    """Each step below changes the order (a parcel, a delivery, a return, a refund), some without changing its
    status; after each, the order is in `updated_since` and its updated_at moved."""
    kettle, mug = goods
    number = order_at(goods, "paid", "sync")
    other = order_at(goods, "paid", "quiet")
    client = key_client("orders:read")
    k, m = line_id(number, kettle.sku), line_id(number, mug.sku)
    pk = Order.objects.get(number=number).pk
    steps = [
        ("pack parcel 1", lambda: services.shipment_create(number=number, carrier="dhl", actor="s", lines=[(k, 1)])),
        (
            "pack parcel 2 (still fulfilling)",
            lambda: services.shipment_create(number=number, carrier="ups", actor="s", lines=[(m, 3)]),
        ),
        ("ship parcel 1", lambda: services.shipment_ship(number=number, shipment=1, actor="s")),
        ("deliver parcel 1", lambda: services.shipment_deliver(number=number, shipment=1, actor="s")),
        (
            "ship parcel 2 (still partly delivered)",
            lambda: services.shipment_ship(number=number, shipment=2, actor="s"),
        ),
        ("deliver parcel 2", lambda: services.shipment_deliver(number=number, shipment=2, actor="s")),
        (
            "ask for a return (still delivered)",
            lambda: services.return_request(number=number, lines=[(k, 1)], reason="damaged", actor="c", user_id=7),
        ),
        ("receive the return", lambda: services.return_receive(number=number, ret=1, restock={k: True}, actor="s")),
        (
            "refund the return in part",
            lambda: services.return_refund(number=number, ret=1, actor="s", amount=Decimal("10.00")),
        ),
        ("goodwill refund", lambda: services.order_refund_amount(number=number, amount=Decimal("1.00"), actor="s")),
        (
            "refund from the payments admin",
            lambda: staff.post(
                "/admin/payments/payment/",
                {"action": "refund_captured", "_selected_action": [Order.objects.get(pk=pk).payment_id]},
            ),
        ),
    ]
    for name, step in steps:
        before = Order.objects.get(number=number).updated_at
        since = timezone.now()
        step()
        assert Order.objects.get(number=number).updated_at > before, name
        assert numbers(client.get(API, {"updated_since": since.isoformat()})) == [number], name
    assert Order.objects.get(number=number).status == "refunded"
    assert numbers(client.get(API, {"updated_before": since.isoformat(), "ordering": "updated_at"}))[0] == other


def bulk_orders(count: int, payment_id: int) -> None:
    """`count` orders with two lines, a parcel of both, a return of one and three history entries each."""
    stamp = timezone.now()
    orders = Order.objects.bulk_create(
        Order(
            number=f"NW-BULK{stamp.microsecond:06d}{i:04d}",
            email=f"b{i}@example.com",
            status="partially_returned",
            currency="EUR",
            subtotal=Decimal("54.00"),
            shipping=0,
            tax=Decimal("9.00"),
            total=Decimal("54.00"),
            prices_include_tax=True,
            shipping_method="standard",
            shipping_address=ADDRESS,
            reservation_key=f"r{i}",
            payment_id=payment_id,
            idempotency_key=f"bulk-{stamp.timestamp()}-{i}",
            access_token="t",
        )
        for i in range(count)
    )
    lines = OrderLine.objects.bulk_create(
        OrderLine(
            order=o,
            variant_id=1,
            product_id=1,
            sku=sku,
            name=sku,
            unit_price=Decimal("8.00"),
            currency="EUR",
            quantity=2,
            line_total=Decimal("16.00"),
            quantity_shipped=2,
            quantity_delivered=2,
            quantity_returned=1 if sku == "A" else 0,
        )
        for o in orders
        for sku in ("A", "B")
    )
    shipments = Shipment.objects.bulk_create(
        Shipment(order=o, number=1, status="delivered", carrier="dhl", tracking_number=f"{o.number}") for o in orders
    )
    ShipmentLine.objects.bulk_create(
        ShipmentLine(shipment=s, line=li, quantity=2) for s in shipments for li in lines if li.order_id == s.order_id
    )
    returns = Return.objects.bulk_create(
        Return(order=o, number=1, status="received", reason="damaged", requested_by="c") for o in orders
    )
    ReturnLine.objects.bulk_create(
        ReturnLine(ret=r, line=li, quantity=1, restock=True)
        for r in returns
        for li in lines
        if li.order_id == r.order_id and li.sku == "A"
    )
    StatusChange.objects.bulk_create(
        StatusChange(order=o, from_status=f, to_status=t, actor="system")
        for o in orders
        for f, t in (("", "pending_payment"), ("pending_payment", "paid"), ("paid", "partially_returned"))
    )


@contextmanager
def every_query():
    with ExitStack() as stack:
        contexts = [stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in connections]
        yield contexts


def test_a_page_of_100_orders_costs_the_same_queries_as_a_page_of_3(goods):
    number = order_at(goods, "return_received", "first")
    payment_id = Order.objects.get(number=number).payment_id
    bulk_orders(2, payment_id)
    client = key_client("orders:read")

    def count(expected: int) -> int:
        with every_query() as contexts:
            response = client.get(API, {"page_size": 100})
        assert len(response.json()["results"]) == expected
        assert all(
            o["lines"] and o["shipments"] and o["returns"] and o["history"] and o["payment"]
            for o in response.json()["results"]
        )
        return sum(len(c) for c in contexts)

    count(3)  # the key's first use writes its "last used"
    few = count(3)
    bulk_orders(97, payment_id)
    assert count(100) == few


# ---------------------------------------------------------------- the detail


def test_the_detail_carries_lines_parcels_returns_payment_and_history(goods):
    kettle, mug = goods
    number = order_at(goods, "return_received", "detail")
    services.return_refund(number=number, ret=1, actor="staff:1")
    body = key_client("orders:read").get(f"{API}{number}/").json()

    assert (body["number"], body["status"], body["customer_id"], body["email"]) == (
        number,
        "partially_returned",
        7,
        "ada@example.com",
    )
    assert (body["currency"], body["subtotal"], body["shipping_price"], body["tax"], body["total"]) == (
        "EUR",
        "54.00",
        "0.00",
        "9.00",
        "54.00",
    )
    assert (body["amount_refunded"], body["prices_include_tax"], body["shipping_method"]) == ("30.00", True, "standard")
    assert body["shipping_address"] == {**dict.fromkeys(("line2", "region", "phone"), ""), **ADDRESS}
    line = next(li for li in body["lines"] if li["sku"] == kettle.sku)
    assert line == {
        "id": line_id(number, kettle.sku),
        "sku": kettle.sku,
        "product_id": kettle.product_id,
        "variant_id": kettle.pk,
        "name": "Copper Kettle",
        "variant_label": line["variant_label"],
        "quantity": 1,
        "unit_price": "30.00",
        "total": "30.00",
        "discount": "0.00",
        "currency": "EUR",
        "quantity_shipped": 1,
        "quantity_delivered": 1,
        "quantity_returned": 1,
        "quantity_refunded": 1,
    }
    (parcel,) = body["shipments"]
    assert (parcel["number"], parcel["status"], parcel["carrier"], parcel["carrier_name"]) == (
        1,
        "delivered",
        "dhl",
        "DHL",
    )
    assert parcel["tracking_number"] == "JD-detail"
    assert parcel["tracking_url"].endswith("AWB=JD-detail")
    assert parcel["capture_amount"] is None, "the only parcel captured everything"
    assert parcel["shipped_at"]
    assert parcel["delivered_at"]
    assert sorted((pl["sku"], pl["quantity"]) for pl in parcel["lines"]) == sorted([(kettle.sku, 1), (mug.sku, 3)])
    (ret,) = body["returns"]
    assert (ret["number"], ret["status"], ret["reason"], ret["amount_refunded"], ret["refunded"]) == (
        1,
        "received",
        "damaged",
        "30.00",
        True,
    )
    assert ret["lines"] == [
        {"line_id": line_id(number, kettle.sku), "sku": kettle.sku, "quantity": 1, "restock": True, "refunded": True}
    ]
    payment = body["payment"]
    order = Order.objects.get(number=number)
    assert payment == {
        "id": order.payment_id,
        "status": "captured",
        "currency": "EUR",
        "amount": "54.00",
        "amount_authorized": "54.00",
        "amount_captured": "54.00",
        "amount_refunded": "30.00",
    }
    assert [(h["from_status"], h["to_status"]) for h in body["history"]] == [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "fulfilling"),
        ("fulfilling", "shipped"),
        ("shipped", "delivered"),
        ("delivered", "partially_returned"),
        ("partially_returned", "partially_returned"),
    ]
    assert body["history"][-1]["note"] == "Refund for return 1: 30.00 EUR"
    assert {"id", "access_token", "reservation_key", "idempotency_key"}.isdisjoint(body)


@pytest.mark.django_db
def test_an_unknown_order_is_a_json_404():
    response = key_client("orders:read").get(f"{API}NW-NOTHING1/")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_the_detail_has_an_etag_and_answers_304_until_the_order_changes(goods):
    number = order_at(goods, "paid", "etag")
    client = key_client("orders:read")
    first = client.get(f"{API}{number}/")
    etag = first["ETag"]
    assert client.get(f"{API}{number}/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    services.shipment_create(number=number, carrier="dhl", actor="s")
    changed = client.get(f"{API}{number}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert len(changed.json()["shipments"]) == 1


# ---------------------------------------------------------------- each action, as the admin does it


def lines_body(number: str, goods, kettle: int, mug: int) -> list[dict]:
    """The API's `lines` for so many kettles and mugs of the order (none: left out)."""
    wanted = zip(goods, (kettle, mug), strict=True)
    return [{"line_id": line_id(number, variant.sku), "quantity": quantity} for variant, quantity in wanted if quantity]


def admin_parcel(staff, number, goods, ship_now):
    k, m = goods
    pk = Order.objects.get(number=number).pk
    form = {
        f"line_{line_id(number, k.sku)}": "1",
        f"line_{line_id(number, m.sku)}": "2",
        "carrier": "dhl",
        "tracking_number": f"A-{number}",
    }
    if ship_now:
        form["ship_now"] = "on"
    return staff.post(f"/admin/orders/order/{pk}/parcel/", form)


def admin_action(name):
    def act(staff, number, goods):
        return staff.post(
            "/admin/orders/order/", {"action": name, "_selected_action": [Order.objects.get(number=number).pk]}
        )

    return act


def admin_step(step):
    def act(staff, number, goods):
        return staff.post(f"/admin/orders/order/{Order.objects.get(number=number).pk}/parcel/1/{step}/")

    return act


def admin_return(form):
    def act(staff, number, goods):
        k = goods[0]
        data = {key.format(kettle=line_id(number, k.sku)): value for key, value in form.items()}
        return staff.post(f"/admin/orders/order/{Order.objects.get(number=number).pk}/return/1/", data)

    return act


def customer_return(staff, number, goods):
    """There is no admin page to ask for a return: the customer asks on their order page (a guest, by its link)."""
    token = Order.objects.get(number=number).access_token
    return Client().post(
        f"/orders/{number}/return/",
        {"t": token, f"return_{line_id(number, goods[0].sku)}": "1", "reason": "damaged", "note": "Dented"},
    )


ACTIONS = {
    # name: (stage, the admin's way, the API's path, the API's body (number, goods) -> dict, status)
    "pack a parcel": (
        "paid",
        lambda s, n, g: admin_parcel(s, n, g, ship_now=False),
        "shipments/",
        lambda n, g: {"lines": lines_body(n, g, 1, 2), "carrier": "dhl", "tracking_number": f"B-{n}"},
        201,
    ),
    "pack and ship a parcel": (
        "paid",
        lambda s, n, g: admin_parcel(s, n, g, ship_now=True),
        "shipments/",
        lambda n, g: {"lines": lines_body(n, g, 1, 2), "carrier": "dhl", "tracking_number": f"B-{n}", "ship_now": True},
        201,
    ),
    "ship a parcel": ("packed", admin_step("ship"), "shipments/1/ship/", lambda n, g: {}, 200),
    "deliver a parcel": ("shipped", admin_step("deliver"), "shipments/1/deliver/", lambda n, g: {}, 200),
    "ship the order": ("paid", admin_action("ship"), "ship/", lambda n, g: {}, 200),
    "deliver the order": ("shipped", admin_action("deliver"), "deliver/", lambda n, g: {}, 200),
    "cancel": ("paid", admin_action("cancel"), "cancel/", lambda n, g: {}, 200),
    "refund in full": ("delivered", admin_action("refund"), "refund/", lambda n, g: {}, 200),
    "ask for a return": (
        "delivered",
        customer_return,
        "returns/",
        lambda n, g: {"lines": lines_body(n, g, 1, 0), "reason": "damaged", "note": "Dented"},
        201,
    ),
    "receive a return": (
        "return_requested",
        admin_return({"receive": "1", "restock_{kettle}": "on"}),
        "returns/1/receive/",
        lambda n, g: {"lines": [{"line_id": line_id(n, g[0].sku), "restock": True}]},
        200,
    ),
    "refund a return": (
        "return_received",
        admin_return({"refund": "1", "amount": "", "include_shipping": "on"}),
        "returns/1/refund/",
        lambda n, g: {"include_shipping": True},
        200,
    ),
}


@pytest.mark.parametrize("name", ACTIONS)
def test_each_action_does_what_the_admin_does_once_and_a_repeat_gets_409(goods, staff, name):
    stage, by_admin, path, body, status = ACTIONS[name]
    ours, theirs = order_at(goods, stage, "admin"), order_at(goods, stage, "api")
    assert state(ours) == state(theirs)
    client, key = key_client_and_key("orders:write")

    before = stock()
    assert by_admin(staff, ours, goods).status_code == 302
    admin_moved = moved(before, stock())
    before = stock()
    response = client.post(f"{API}{theirs}/{path}", body(theirs, goods), format="json")
    api_moved = moved(before, stock())

    assert response.status_code == status, response.content
    assert state(theirs) != state(order_at(goods, stage, "untouched")), "the action changed something"
    assert state(theirs) == state(ours), "the same change as the admin's"
    assert api_moved == admin_moved, "the same stock moved"
    order = response.json()["order"] if status == 201 else response.json()
    assert (order["number"], order["status"]) == (theirs, state(theirs)["status"])
    actors = {h.actor for h in Order.objects.get(number=theirs).history.all()}
    actors |= set(Return.objects.filter(order__number=theirs).values_list("requested_by", flat=True))
    assert f"apikey:{key.id}" in actors, "the key is who did it"

    after = state(theirs), stock()
    again = client.post(f"{API}{theirs}/{path}", body(theirs, goods), format="json")
    assert again.status_code == 409, again.content
    assert error_code(again) == "conflict"
    assert again.json()["error"]["message"]
    assert (state(theirs), stock()) == after, "nothing done twice"


def test_shipping_captures_what_the_parcel_holds_and_the_last_parcel_the_rest(goods):
    _, mug = goods
    number = order_at(goods, "paid", "capture")
    client = writer()
    first = client.post(
        f"{API}{number}/shipments/",
        {"lines": lines_body(number, goods, 1, 1), "carrier": "dhl", "tracking_number": "JD77", "ship_now": True},
        format="json",
    )
    assert first.status_code == 201
    assert first.json()["shipment"]["status"] == "shipped"
    assert first.json()["shipment"]["capture_amount"] == "38.00"
    assert first.json()["order"]["payment"]["amount_captured"] == "38.00"
    assert first.json()["order"]["status"] == "partially_shipped"
    packed = client.post(f"{API}{number}/shipments/", {"carrier": "ups"}, format="json").json()
    assert [(li["sku"], li["quantity"]) for li in packed["shipment"]["lines"]] == [(mug.sku, 2)], "what was left"
    shipped = client.post(f"{API}{number}/shipments/2/ship/", {"tracking_number": "1Z55"}, format="json").json()
    assert shipped["status"] == "shipped"
    assert shipped["shipments"][1]["tracking_number"] == "1Z55"
    assert shipped["payment"]["amount_captured"] == "54.00" == shipped["total"]
    assert payment_get(payment_id=Order.objects.get(number=number).payment_id).amount_captured == Decimal("54.00")


def test_a_refund_of_an_amount_needs_an_idempotency_key_and_runs_once_per_key(goods, staff):
    ours, theirs = order_at(goods, "delivered", "admin"), order_at(goods, "delivered", "api")
    staff.post(f"/admin/orders/order/{Order.objects.get(number=ours).pk}/refund/", {"amount": "5.00", "note": "Late"})
    client = writer()
    body = {"amount": "5.00", "note": "Late"}
    refused = client.post(f"{API}{theirs}/refund/", body, format="json")
    assert refused.status_code == 400
    assert error_code(refused) == "idempotency_key_required"
    assert state(theirs) == state(order_at(goods, "delivered", "untouched"))
    first = client.post(f"{API}{theirs}/refund/", body, format="json", HTTP_IDEMPOTENCY_KEY="late-1")
    assert first.status_code == 200
    assert first.json()["amount_refunded"] == "5.00"
    assert state(theirs) == state(ours)
    again = client.post(f"{API}{theirs}/refund/", body, format="json", HTTP_IDEMPOTENCY_KEY="late-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert state(theirs) == state(ours), "refunded once"
    assert payment_get(payment_id=Order.objects.get(number=theirs).payment_id).amount_refunded == Decimal("5.00")

    # The first answer was lost (the process died after the refund, before its answer was kept): the retry reaches
    # the view, and the service, which kept the key with the refund, refunds nothing more.
    from kernel.models import IdempotentRequest

    IdempotentRequest.objects.all().delete()
    retried = client.post(f"{API}{theirs}/refund/", body, format="json", HTTP_IDEMPOTENCY_KEY="late-1")
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried
    assert retried.json()["amount_refunded"] == "5.00"
    assert payment_get(payment_id=Order.objects.get(number=theirs).payment_id).amount_refunded == Decimal("5.00")
    other_key = key_client_and_key("orders:write")[0]
    another = other_key.post(f"{API}{theirs}/refund/", body, format="json", HTTP_IDEMPOTENCY_KEY="late-1")
    assert another.json()["amount_refunded"] == "10.00", "another API key's late-1 is another request"


def test_a_repeated_action_with_the_same_idempotency_key_gets_the_first_answer(goods):
    number = order_at(goods, "packed", "replay")
    client = writer()
    first = client.post(f"{API}{number}/shipments/1/ship/", {}, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")
    again = client.post(f"{API}{number}/shipments/1/ship/", {}, format="json", HTTP_IDEMPOTENCY_KEY="ship-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Transaction.objects.filter(kind="capture").count() == 1


@pytest.mark.parametrize(
    ("stage", "path", "body", "words"),
    [
        ("pending", "shipments/", {"carrier": "dhl"}, "cannot be shipped"),
        ("pending", "ship/", {}, "cannot be shipped"),
        ("shipped", "cancel/", {}, "can no longer be cancelled"),
        ("packed", "shipments/1/deliver/", {}, "has not been shipped yet"),
        ("paid", "deliver/", {}, "cannot be delivered"),
        ("paid", "refund/", {}, "cannot become refunded"),
        ("paid", "returns/", {"lines": "KETTLE", "reason": "damaged"}, "up to 0"),
        ("return_received", "returns/1/refund/", {"amount": "60.00"}, None),  # more than the total: 400, below
    ],
)
def test_a_transition_that_is_not_allowed_gets_409_with_the_reason(goods, stage, path, body, words):
    number = order_at(goods, stage, "refused")
    if body.get("lines") == "KETTLE":
        body = {**body, "lines": [{"line_id": line_id(number, goods[0].sku), "quantity": 1}]}
    before = state(number)
    response = writer().post(f"{API}{number}/{path}", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    if words is None:
        assert response.status_code == 400
        assert "can still be refunded" in response.json()["error"]["fields"]["amount"][0]
    else:
        assert response.status_code == 409, response.content
        assert words in response.json()["error"]["message"]
    assert state(number) == before


@pytest.mark.parametrize(
    "path",
    [
        "shipments/9/ship/",
        "shipments/9/deliver/",
        "returns/9/receive/",
        "returns/9/refund/",
        "shipments/99999999999999999999/ship/",
    ],
)
def test_an_unknown_parcel_or_return_is_a_404(goods, path):
    number = order_at(goods, "return_requested", "unknown")
    response = writer().post(f"{API}{number}/{path}", {}, format="json")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# ---------------------------------------------------------------- what an action takes, and what it refuses

FORBIDDEN = {
    "status": "delivered",
    "total": "0.01",
    "email": "thief@example.com",
    "id": 1,
    "number": "NW-OTHER",
    "amount_refunded": "0.00",
    "payment_id": 1,
}


@pytest.mark.parametrize("name", ACTIONS)
def test_fields_an_action_does_not_take_are_refused_and_change_nothing(goods, name):
    stage, _, path, body, _ = ACTIONS[name]
    number = order_at(goods, stage, "mass")
    before = state(number), stock()
    response = writer().post(f"{API}{number}/{path}", {**body(number, goods), **FORBIDDEN}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(FORBIDDEN)
    assert (state(number), stock()) == before
    order = Order.objects.get(number=number)
    assert (order.email, order.total) == ("ada@example.com", Decimal("54.00"))


def test_unknown_fields_inside_lines_are_refused_too(goods):
    number = order_at(goods, "paid", "nested")
    lines = [{**line, "unit_price": "0.01"} for line in lines_body(number, goods, 1, 1)]
    response = writer().post(f"{API}{number}/shipments/", {"lines": lines, "carrier": "dhl"}, format="json")
    assert response.status_code == 400
    assert "unit_price" in json.dumps(response.json()["error"]["fields"])
    assert not Shipment.objects.exists()


KETTLE, MUG = "{kettle}", "{mug}"
BAD_INPUT = [
    # (stage, path, body, the field named)
    ("paid", "shipments/", {"carrier": "pigeon"}, "carrier"),
    ("paid", "shipments/", {}, "carrier"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": []}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": "everything"}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": "one", "quantity": 1}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": KETTLE}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": KETTLE, "quantity": 0}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": KETTLE, "quantity": -1}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": KETTLE, "quantity": 10**40}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": KETTLE, "quantity": 2}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": 10**40, "quantity": 1}]}, "lines"),
    ("paid", "shipments/", {"carrier": "dhl", "lines": [{"line_id": 999999, "quantity": 1}]}, "lines"),
    (
        "paid",
        "shipments/",
        {"carrier": "dhl", "lines": [{"line_id": MUG, "quantity": 1}, {"line_id": MUG, "quantity": 1}]},
        "lines",
    ),
    ("paid", "shipments/", {"carrier": "dhl", "tracking_number": "x" * 65}, "tracking_number"),
    ("paid", "shipments/", {"carrier": "dhl", "tracking_number": "JD\x00"}, "tracking_number"),
    ("paid", "shipments/", {"carrier": "dhl", "ship_now": "perhaps"}, "ship_now"),
    ("paid", "shipments/", {"carrier": "dhl", "tracking_number": "JD-taken"}, "tracking_number"),
    ("packed", "shipments/1/ship/", {"tracking_number": "JD-taken"}, "tracking_number"),
    ("packed", "shipments/1/ship/", {"tracking_number": ["JD1"]}, "tracking_number"),
    ("paid", "ship/", {"carrier": "owl"}, "carrier"),
    ("delivered", "refund/", {"amount": "abc"}, "amount"),
    ("delivered", "refund/", {"amount": "-5"}, "amount"),
    ("delivered", "refund/", {"amount": "0"}, "amount"),
    ("delivered", "refund/", {"amount": "1.234"}, "amount"),
    ("delivered", "refund/", {"amount": "NaN"}, "amount"),
    ("delivered", "refund/", {"amount": "Infinity"}, "amount"),
    ("delivered", "refund/", {"amount": "1e400"}, "amount"),
    ("delivered", "refund/", {"amount": "54.01"}, "amount"),
    ("delivered", "refund/", {"note": "x" * 201}, "note"),
    ("delivered", "returns/", {"lines": [{"line_id": KETTLE, "quantity": 1}], "reason": "bored"}, "reason"),
    ("delivered", "returns/", {"reason": "damaged"}, "lines"),
    ("delivered", "returns/", {"lines": [{"line_id": KETTLE, "quantity": 2}], "reason": "damaged"}, "lines"),
    ("delivered", "returns/", {"lines": [{"line_id": 999999, "quantity": 1}], "reason": "damaged"}, "lines"),
    ("return_requested", "returns/1/receive/", {"lines": [{"line_id": MUG, "restock": True}]}, "lines"),
    ("return_requested", "returns/1/receive/", {"lines": [{"line_id": KETTLE, "restock": "maybe"}]}, "lines"),
    ("return_requested", "returns/1/receive/", {"lines": {"line_id": KETTLE}}, "lines"),
    ("return_received", "returns/1/refund/", {"include_shipping": "sometimes"}, "include_shipping"),
    ("paid", "cancel/", [], "non_field_errors"),
    ("paid", "cancel/", "cancel it", "non_field_errors"),
]


def fill(value, number: str, goods):
    text = json.dumps(value).replace('"{kettle}"', str(line_id(number, goods[0].sku)))
    return json.loads(text.replace('"{mug}"', str(line_id(number, goods[1].sku))))


@pytest.mark.parametrize(("stage", "path", "body", "field"), BAD_INPUT)
def test_invalid_input_gets_400_naming_the_field_and_changes_nothing(goods, stage, path, body, field):
    number = order_at(goods, stage, "bad")
    if "JD-taken" in json.dumps(body):
        other = order_at(goods, "paid", "other")
        services.shipment_create(number=other, carrier="dhl", actor="s", tracking_number="JD-taken")
    before = state(number), stock()
    response = writer().post(
        f"{API}{number}/{path}", fill(body, number, goods), format="json", HTTP_IDEMPOTENCY_KEY="bad-1"
    )
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["fields"], response.json()
    assert (state(number), stock()) == before


def test_malformed_json_gets_400(goods):
    number = order_at(goods, "paid", "garbled")
    response = writer().post(f"{API}{number}/cancel/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "parse_error"
    assert Order.objects.get(number=number).status == "paid"


@pytest.mark.postgres
def test_the_same_parcel_shipped_by_five_requests_at_once_ships_and_charges_once(goods):
    number = order_at(goods, "packed", "race")
    _, token = make_key("orders:write")
    answers = []
    barrier = threading.Barrier(5)

    def ship():
        barrier.wait()
        answers.append(client_with(token).post(f"{API}{number}/shipments/1/ship/", {}, format="json").status_code)
        connections.close_all()

    threads = [threading.Thread(target=ship) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409, 409, 409, 409]
    assert Transaction.objects.filter(kind="capture").count() == 1
    assert payment_get(payment_id=Order.objects.get(number=number).payment_id).amount_captured == Decimal("54.00")
    assert [h.to_status for h in Order.objects.get(number=number).history.all()].count("shipped") == 1


def test_staff_use_the_browsable_api_and_their_actions_name_them(goods, staff):
    number = order_at(goods, "paid", "browsable")
    assert staff.get(API, HTTP_ACCEPT="text/html").status_code == 200
    assert staff.get(f"{API}{number}/", HTTP_ACCEPT="text/html").status_code == 200
    assert staff.get(f"{API}{number}/cancel/", HTTP_ACCEPT="text/html").status_code == 405
    response = staff.post(f"{API}{number}/cancel/", {}, content_type="application/json")
    assert response.status_code == 200, response.content
    user_id = staff.session["_auth_user_id"]
    assert Order.objects.get(number=number).history.last().actor == f"staff:{user_id}"
