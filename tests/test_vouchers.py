"""Vouchers and automatic promotions: every rule and its message, allocation to lines, refunds of discounted orders,
giving a use back, the cart, checkout, order page, email, API and admin, and the last use under 20 threads."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import StockItem
from catalog.services import OutOfStock
from orders import services
from orders.models import Discount, Order, OrderLine, Promotion, Voucher, VoucherUse
from orders.vouchers import allocate
from tests.api import key_client
from tests.concurrency import race
from tests.factories import SuperuserFactory, UserFactory, make_category, make_product
from tests.test_checkout import DETAILS, pay_on_gateway
from tests.test_orders import ADDRESS, pay

MINUS = "\N{MINUS SIGN}"
pytestmark = [pytest.mark.modules, pytest.mark.django_db]


@pytest.fixture
def shop():
    """Home > Kitchen > Cookware: a pan (40.00) in Cookware, a kettle (30.00) in Kitchen; a lamp (25.00) in
    Lighting."""
    home = make_category("Home")
    kitchen = make_category("Kitchen", parent=home)
    cookware = make_category("Cookware", parent=kitchen)
    lighting = make_category("Lighting", parent=home)
    pan = make_product("Iron Pan", cookware, variants=[{"price": "40.00", "stock": 50}]).variants.get()
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 50}]).variants.get()
    lamp = make_product("Brass Lamp", lighting, variants=[{"price": "25.00", "stock": 50}]).variants.get()
    return {"home": home, "kitchen": kitchen, "cookware": cookware, "lighting": lighting, "pan": pan,
            "kettle": kettle, "lamp": lamp}  # fmt: skip


def voucher(code="SAVE10", **fields) -> Voucher:
    defaults = {"kind": Discount.PERCENTAGE, "value": Decimal(10), "per_customer_limit": None}
    return Voucher.objects.create(code=code, **{**defaults, **fields})


def promotion(name="Kitchen week", **fields) -> Promotion:
    now = timezone.now()
    defaults = {"kind": Discount.PERCENTAGE, "value": Decimal(10), "starts_at": now - timedelta(hours=1),
                "ends_at": now + timedelta(days=7)}  # fmt: skip
    return Promotion.objects.create(name=name, **{**defaults, **fields})


def quote(*lines, code="", method="standard", **kw) -> services.Quote:
    return services.order_quote(lines=[(v.pk, q) for v, q in lines], shipping_method=method, voucher_code=code, **kw)


def place(*lines, code="", key="k1", email="ada@example.com", user_id=None, method="standard"):
    return services.order_place(idempotency_key=key, lines=[(v.pk, q) for v, q in lines], shipping_method=method,
                                shipping_address=ADDRESS, email=email, user_id=user_id,
                                voucher_code=code)  # fmt: skip


# ---------------------------------------------------------------- the rules, and what the customer is told


def test_a_percentage_voucher_takes_its_share_off_and_the_tax_follows_the_discounted_total(shop):
    voucher("SAVE10")
    q = quote((shop["pan"], 1), (shop["kettle"], 1), code="  save10 ")
    assert q.voucher is not None
    assert q.voucher.code == "SAVE10", "trimmed and case-insensitive"
    assert (q.subtotal, q.discount, q.shipping.price, q.total) == (Decimal("70.00"), Decimal("7.00"), Decimal(0),
                                                                   Decimal("63.00"))  # fmt: skip
    assert q.tax == Decimal("10.50"), "20 % VAT included in 63.00, not in 70.00"
    assert [line.discount for line in q.lines] == [Decimal("4.00"), Decimal("3.00")]
    assert q.voucher_error == ""


@pytest.mark.parametrize(
    ("fields", "message", "reason"),
    [
        ({"code": "OTHER"}, "“NOPE” is not a valid voucher code. Check it and try again.", "unknown"),
        ({"is_active": False}, "“NOPE” is not a valid voucher code. Check it and try again.", "unknown"),
        ({"ends_at": timezone.now() - timedelta(days=1)}, "NOPE has expired (it ran until", "expired"),
        (
            {"starts_at": timezone.now() + timedelta(days=2)},
            "NOPE is not valid yet: it can be used from",
            "not_yet_valid",
        ),
        ({"usage_limit": 0}, "This code has been used up.", "used_up"),
        ({"minimum_spend": Decimal("42.40")}, "Spend €12.40 more to use NOPE.", "minimum_spend"),
    ],
)
def test_a_code_that_cannot_be_used_says_why_and_leaves_the_price_alone(shop, fields, message, reason):
    voucher(**{"code": "NOPE", **fields})
    q = quote((shop["kettle"], 1), code="nope")
    assert q.voucher is None
    assert q.voucher_error.startswith(message), q.voucher_error
    assert (q.discount, q.total) == (Decimal(0), Decimal("34.90"))
    with pytest.raises(services.VoucherRefused, match=re.escape(message)) as refused:
        place((shop["kettle"], 1), code="nope")
    assert refused.value.reason == reason
    assert not Order.objects.exists()


def test_restricted_to_a_category_it_covers_its_subcategories_and_nothing_else(shop):
    voucher("KITCHEN20", value=Decimal(20), category_ids=[shop["kitchen"].pk], minimum_spend=Decimal("50.00"))
    q = quote((shop["pan"], 1), (shop["kettle"], 1), (shop["lamp"], 2), code="kitchen20")
    assert q.voucher_discount == Decimal("14.00"), "20 % of the pan (Cookware, under Kitchen) and the kettle"
    assert {line.name: line.discount for line in q.lines} == {"Iron Pan": Decimal("8.00"),
                                                               "Copper Kettle": Decimal("6.00"),
                                                               "Brass Lamp": Decimal(0)}  # fmt: skip
    short = quote((shop["kettle"], 1), (shop["lamp"], 4), code="KITCHEN20")
    assert short.voucher_error == "Spend €20.00 more on the items it applies to to use KITCHEN20.", (
        "the lamps do not count towards its minimum spend"
    )
    lamps = quote((shop["lamp"], 4), code="KITCHEN20")
    assert lamps.voucher_error == "KITCHEN20 does not apply to the items in your cart."


def test_restricted_to_products_and_a_fixed_amount_never_more_than_those_items(shop):
    voucher("LAMP50", kind=Discount.FIXED, value=Decimal("50.00"), product_ids=[shop["lamp"].product_id])
    q = quote((shop["lamp"], 1), (shop["kettle"], 1), code="lamp50")
    assert q.voucher_discount == Decimal("25.00"), "capped at the lamp's price"
    assert q.total == Decimal("30.00"), "the kettle is still paid (delivery is free from €50.00 before discounts)"


def test_a_free_delivery_voucher_waives_the_chosen_method(shop):
    voucher("FREESHIP", kind=Discount.FREE_SHIPPING, value=0)
    q = quote((shop["kettle"], 1), code="freeship", method="express")
    assert (q.shipping.price, q.shipping_discount, q.shipping_price, q.total) == (
        Decimal("9.90"), Decimal("9.90"), Decimal(0), Decimal("30.00"))  # fmt: skip
    order = place((shop["kettle"], 1), code="freeship", method="express")
    assert (order.shipping, order.shipping_discount, order.voucher_code, order.total) == (
        Decimal(0), Decimal("9.90"), "FREESHIP", Decimal("30.00"))  # fmt: skip
    assert VoucherUse.objects.get().amount == Decimal("9.90")
    free_anyway = place((shop["pan"], 2), code="freeship", key="k2")
    assert (free_anyway.shipping, free_anyway.voucher_code) == (Decimal(0), ""), "nothing to waive: not used up"
    assert Voucher.objects.get().times_used == 1


def test_the_total_limit_counts_orders_and_the_next_customer_is_told_it_is_used_up(shop):
    voucher("TWICE", usage_limit=2)
    place((shop["kettle"], 1), code="twice", key="a", email="a@example.com")
    place((shop["kettle"], 1), code="twice", key="b", email="b@example.com")
    assert Voucher.objects.get().times_used == 2
    assert quote((shop["kettle"], 1), code="twice").voucher_error == "This code has been used up."
    with pytest.raises(services.VoucherRefused, match=re.escape("This code has been used up.")):
        place((shop["kettle"], 1), code="twice", key="c", email="c@example.com")
    assert Order.objects.count() == 2


def test_the_per_customer_limit_is_per_account_and_per_email_for_guests(shop):
    voucher("ONCE", per_customer_limit=1)
    place((shop["kettle"], 1), code="once", key="ada-1", user_id=7, email="ada@example.com")
    message = "ONCE can be used once per customer, and you have used it already."
    assert quote((shop["kettle"], 1), code="once", user_id=7).voucher_error == message
    with pytest.raises(services.VoucherRefused, match=message):
        place((shop["kettle"], 1), code="once", key="ada-2", user_id=7, email="other@example.com")
    assert quote((shop["kettle"], 1), code="once", user_id=8).voucher is not None, "another account may"

    place((shop["kettle"], 1), code="once", key="guest-1", email="Guest@Example.com")
    with pytest.raises(services.VoucherRefused, match=message):
        place((shop["kettle"], 1), code="once", key="guest-2", email="  guest@example.COM ")
    assert VoucherUse.objects.filter(email="guest@example.com").count() == 1


def test_placing_twice_with_one_key_gives_one_order_and_one_use(shop):
    voucher("SAVE10", usage_limit=5)
    first = place((shop["kettle"], 1), code="SAVE10", key="same")
    second = place((shop["kettle"], 1), code="SAVE10", key="same")
    assert first.number == second.number
    assert (VoucherUse.objects.count(), Voucher.objects.get().times_used) == (1, 1)


def test_the_last_use_taken_between_the_quote_and_the_order_is_refused_under_the_lock(shop, monkeypatch):
    """The quote saw one use left; by the time the order's transaction locks the voucher, someone took it: the
    order is not created, its stock is released, and the customer is told."""
    voucher("GONE", usage_limit=1)
    seen = quote((shop["kettle"], 1), code="gone", email="late@example.com")
    assert seen.voucher is not None
    place((shop["kettle"], 1), code="gone", key="first", email="first@example.com")
    monkeypatch.setattr(services, "order_quote", lambda **kw: seen)  # what the late customer's quote had said
    with pytest.raises(services.VoucherRefused, match=re.escape("This code has been used up.")) as refused:
        place((shop["kettle"], 1), code="gone", key="late", email="late@example.com")
    assert refused.value.reason == "used_up"
    assert Order.objects.count() == 1
    assert StockItem.objects.get(variant=shop["kettle"]).reserved == 1, "the late order's hold was released"
    assert (Voucher.objects.get().times_used, VoucherUse.objects.count()) == (1, 1)


def test_cancelling_or_expiring_an_unpaid_order_gives_its_use_back(shop):
    voucher("ONE", usage_limit=1, per_customer_limit=1)
    order = place((shop["kettle"], 1), code="one", key="a")
    assert quote((shop["kettle"], 1), code="one").voucher_error == "This code has been used up."
    services.order_cancel(number=order.number, actor="customer:1")
    assert Voucher.objects.get().times_used == 0
    assert VoucherUse.objects.get().given_back_at is not None
    assert "Voucher ONE given back" in [h.note for h in services.order_find(number=order.number).history]

    again = place((shop["kettle"], 1), code="one", key="b")
    assert again.voucher_code == "ONE", "the same customer may use it again"
    Order.objects.filter(number=again.number).update(created_at=timezone.now() - timedelta(hours=3))
    assert services.orders_expire_unpaid() == 1
    assert Voucher.objects.get().times_used == 0
    assert VoucherUse.objects.filter(given_back_at__isnull=True).count() == 0


# ---------------------------------------------------------------- promotions


def test_a_running_promotion_applies_without_a_code_and_only_while_it_runs(shop):
    promotion("Kitchen week: 10 % off", category_ids=[shop["kitchen"].pk])
    promotion("Last week", category_ids=[shop["kitchen"].pk], value=Decimal(50),
              starts_at=timezone.now() - timedelta(days=14), ends_at=timezone.now() - timedelta(days=7))  # fmt: skip
    promotion("Next week", value=Decimal(50), starts_at=timezone.now() + timedelta(days=1),
              ends_at=timezone.now() + timedelta(days=8))  # fmt: skip
    q = quote((shop["pan"], 1), (shop["lamp"], 1))
    assert (q.promotion_name, q.promotion_discount, q.total) == ("Kitchen week: 10 % off", Decimal("4.00"),
                                                                 Decimal("61.00"))  # fmt: skip
    order = place((shop["pan"], 1), (shop["lamp"], 1))
    assert (order.promotion_name, order.promotion_discount, order.discount, order.voucher_code) == (
        "Kitchen week: 10 % off", Decimal("4.00"), Decimal("4.00"), "")  # fmt: skip
    assert quote((shop["lamp"], 1)).promotion is None, "the lamp is not in Kitchen"


def test_the_best_promotion_applies_and_a_voucher_stacks_on_the_promoted_prices(shop):
    promotion("Kitchen week", category_ids=[shop["kitchen"].pk])  # 10 % of 70.00 = 7.00
    promotion("Five off everything", kind=Discount.FIXED, value=Decimal("5.00"))  # 5.00 off 95.00
    voucher("EXTRA", value=Decimal(10), minimum_spend=Decimal("88.00"))
    q = quote((shop["pan"], 1), (shop["kettle"], 1), (shop["lamp"], 1), code="extra")
    assert q.promotion_name == "Kitchen week", "7.00 off beats 5.00 off"
    assert q.voucher_discount == Decimal("8.80"), "10 % of 88.00: the prices after the promotion"
    assert q.discount == Decimal("15.80")
    assert q.total == Decimal("79.20")
    assert sum(line.discount for line in q.lines) == q.discount
    Voucher.objects.update(minimum_spend=Decimal("90.00"))
    assert quote((shop["pan"], 1), (shop["kettle"], 1), (shop["lamp"], 1), code="extra").voucher_error == (
        "Spend €2.00 more to use EXTRA."), "the minimum spend is on what is paid after the promotion"  # fmt: skip


def test_a_quote_costs_the_same_queries_whatever_the_number_of_lines(shop):
    promotion("Kitchen week", category_ids=[shop["kitchen"].pk])
    voucher("SAVE10", category_ids=[shop["home"].pk])
    cookware = shop["cookware"]
    many = [make_product(f"Pan {i}", cookware, variants=[{"price": "10.00", "stock": 5}]).variants.get()
            for i in range(12)]  # fmt: skip
    quote((shop["pan"], 1), code="save10", user_id=3)  # the category tree and the promotions are cached
    with CaptureQueriesContext(connection) as small:
        quote((shop["pan"], 1), code="save10", user_id=3)
    with CaptureQueriesContext(connection) as large:
        q = quote(*[(v, 1) for v in many], code="save10", user_id=3)
    assert len(small) == len(large) <= 4
    assert q.voucher_discount == Decimal("10.80")


# ---------------------------------------------------------------- allocation, refunds, captures


def test_allocation_adds_up_to_the_cent():
    shares = allocate(Decimal("10.00"), [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")], "EUR")
    assert sum(shares) == Decimal("10.00")
    assert allocate(Decimal("0.01"), [Decimal(1), Decimal(2)], "EUR") == (Decimal(0), Decimal("0.01"))
    assert allocate(Decimal("5"), [Decimal(1), Decimal(1)], "JPY") == (Decimal(3), Decimal(2))


@pytest.mark.django_db(transaction=True)
def test_returns_of_a_discounted_order_refund_what_was_paid_and_all_of_it_refunds_the_total(shop):
    voucher("SAVE15", value=Decimal(15))
    order = place((shop["kettle"], 3), (shop["lamp"], 1), code="save15", method="express")
    # 90.00 + 25.00 = 115.00, 15 % = 17.25 (13.50 + 3.75), express 9.90
    assert (order.subtotal, order.voucher_discount, order.total) == (Decimal("115.00"), Decimal("17.25"),
                                                                     Decimal("107.65"))  # fmt: skip
    assert {li.sku: li.discount for li in order.lines} == {shop["kettle"].sku: Decimal("13.50"),
                                                           shop["lamp"].sku: Decimal("3.75")}  # fmt: skip
    pay(order)
    services.order_ship(number=order.number, actor="staff:1")
    services.order_deliver(number=order.number, actor="carrier")
    order = services.order_find(number=order.number)
    kettle, lamp = (next(li for li in order.lines if li.sku == v.sku) for v in (shop["kettle"], shop["lamp"]))

    first = services.return_request(number=order.number, lines=[(kettle.id, 1)], reason="changed_mind",
                                    actor="guest", access_token=order.access_token)  # fmt: skip
    services.return_refund(number=order.number, ret=first.number, actor="staff:1")
    assert services.order_find(number=order.number).amount_refunded == Decimal("25.50"), "30.00 less its 4.50"

    rest = services.return_request(number=order.number, lines=[(kettle.id, 2), (lamp.id, 1)],
                                   reason="changed_mind", actor="guest", access_token=order.access_token)  # fmt: skip
    services.return_refund(number=order.number, ret=rest.number, actor="staff:1", include_shipping=True)
    done = services.order_find(number=order.number)
    assert done.amount_refunded == done.total == Decimal("107.65"), "everything back: exactly what was paid"
    assert done.status == "refunded"


@pytest.mark.django_db(transaction=True)
def test_a_first_parcel_captures_its_lines_after_their_discount(shop):
    voucher("HALF", value=Decimal(50))
    order = place((shop["kettle"], 1), (shop["lamp"], 1), code="half")
    pay(order)
    order = services.order_find(number=order.number)
    kettle = next(li for li in order.lines if li.sku == shop["kettle"].sku)
    services.shipment_create(number=order.number, carrier="dhl", actor="s", lines=[(kettle.id, 1)],
                             tracking_number="JD01")  # fmt: skip
    parcel = services.shipment_ship(number=order.number, shipment=1, actor="s")
    assert parcel.capture_amount == Decimal("15.00"), "the kettle's 30.00, half off"


# ---------------------------------------------------------------- the API and the admin


def test_the_api_order_shows_the_discount_and_the_code(shop):
    promotion("Kitchen week", category_ids=[shop["kitchen"].pk])
    voucher("SAVE10")
    order = place((shop["kettle"], 1), (shop["lamp"], 1), code="save10")
    body = key_client("orders:read").get(f"/api/v1/orders/{order.number}/").json()
    assert (body["discount"], body["promotion_name"], body["promotion_discount"], body["voucher_code"],
            body["voucher_discount"], body["shipping_discount"], body["total"]) == (
        "8.20", "Kitchen week", "3.00", "SAVE10", "5.20", "0.00", "46.80")  # fmt: skip
    assert sorted(line["discount"] for line in body["lines"]) == ["2.50", "5.70"]
    plain = place((shop["lamp"], 1), key="plain")
    body = key_client("orders:read").get(f"/api/v1/orders/{plain.number}/").json()
    assert (body["voucher_code"], body["promotion_name"], body["discount"]) == (None, None, "0.00")


def test_staff_see_and_make_vouchers_in_the_admin(shop):
    client = Client()
    client.force_login(SuperuserFactory())
    voucher("SAVE10", usage_limit=100)
    place((shop["kettle"], 1), code="save10")
    page = client.get("/admin/orders/voucher/?q=save").content.decode()
    assert "SAVE10" in page
    assert "1 / 100" in page
    assert "10\u00a0% off on everything" in page
    response = client.post("/admin/orders/voucher/add/", {
        "code": " kitchen5 ", "name": "Kitchen fiver", "is_active": "on", "kind": "fixed", "value": "5.00",
        "minimum_spend": "20.00", "categories": [str(shop["kitchen"].pk)], "products": "",
        "usage_limit": "", "per_customer_limit": "1", "uses-TOTAL_FORMS": "0", "uses-INITIAL_FORMS": "0",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    made = Voucher.objects.get(code="KITCHEN5")
    assert (made.category_ids, made.value) == ([shop["kitchen"].pk], Decimal("5.00"))
    bad = client.post("/admin/orders/voucher/add/", {
        "code": "PCT", "kind": "percentage", "value": "150", "minimum_spend": "0", "products": "999999",
        "uses-TOTAL_FORMS": "0", "uses-INITIAL_FORMS": "0",
    }).content.decode()  # fmt: skip
    assert "A percentage is more than 0 and at most 100." in bad
    assert "No product with id 999999." in bad
    order = Order.objects.get()
    detail = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "SAVE10" in detail
    assert "3.00" in detail
    assert "SAVE10 (-3.00)" in client.get("/admin/orders/order/").content.decode()
    assert client.get("/admin/orders/promotion/add/").status_code == 200


def test_the_demo_shop_gets_two_vouchers_and_a_running_promotion(shop):
    made = services.vouchers_demo_seed(category_id=shop["kitchen"].pk, category_name="Kitchen")
    assert made == ["WELCOME10", "FREESHIP", "promotion"]
    assert services.vouchers_demo_seed(category_id=shop["kitchen"].pk, category_name="Kitchen") == []
    q = quote((shop["kettle"], 2), code="welcome10")
    assert q.promotion_name == "Kitchen week: 10\u00a0% off"
    assert (q.promotion_discount, q.voucher_discount) == (Decimal("6.00"), Decimal("5.40"))


# ---------------------------------------------------------------- the shop: cart, checkout, order page, email


def cart_page(client) -> str:
    return client.get("/cart/").content.decode()


def test_a_shopper_applies_a_code_in_the_cart_and_pays_the_discounted_total(
    client, shop, django_capture_on_commit_callbacks
):
    voucher("SAVE10", per_customer_limit=1)
    client.post("/cart/add", {"variant": shop["kettle"].pk, "quantity": "2"})
    wrong = client.post("/cart/voucher", {"code": "SAVE99"}, follow=True).content.decode()
    assert "“SAVE99” is not a valid voucher code. Check it and try again." in wrong
    assert 'value="SAVE99"' in wrong, "what was typed stays in the field"
    assert "“SAVE99”" not in cart_page(client), "said once"

    client.post("/cart/voucher", {"code": " save10 "})
    page = cart_page(client)
    assert 'Voucher <strong class="voucher-code">SAVE10</strong>' in page
    assert f"{MINUS}€6.00" in page
    assert "€54.00" in page, "the subtotal after discounts"

    assert client.post("/checkout/", DETAILS)["Location"] == "/checkout/review/"
    review = client.get("/checkout/review/").content.decode()
    assert "SAVE10" in review
    assert "Place order and pay €54.00" in review
    token = re.search(r'name="token" value="([^"]+)"', review).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/checkout/place/", {"token": token})
        second = client.post("/checkout/place/", {"token": token})
    assert first["Location"] == second["Location"]
    assert (Order.objects.count(), VoucherUse.objects.count()) == (1, 1), "placed and used once"
    with django_capture_on_commit_callbacks(execute=True):
        back = pay_on_gateway(client, first["Location"], "4242424242424242")
    client.get(back)
    order = Order.objects.get()
    assert (order.total, order.voucher_code, order.voucher_discount) == (Decimal("54.00"), "SAVE10", Decimal("6.00"))
    detail = client.get(f"/orders/{order.number}/?t={order.access_token}").content.decode()
    assert 'Voucher <span class="voucher-code">SAVE10</span>' in detail
    assert f"{MINUS}€6.00" in detail
    (email,) = mail.outbox
    assert "Voucher SAVE10: -€6.00" in email.body
    assert "Voucher SAVE10" in email.alternatives[0][0]
    assert client.session.get("voucher_code") is None, "used: the next cart starts without it"


def test_a_code_that_stops_applying_when_the_cart_changes_says_so(client, shop):
    voucher("BIG", minimum_spend=Decimal("50.00"))
    client.post("/cart/add", {"variant": shop["kettle"].pk, "quantity": "2"})
    client.post("/cart/voucher", {"code": "big"})
    assert f"{MINUS}€6.00" in cart_page(client)
    client.post("/cart/update", {"variant": shop["kettle"].pk, "quantity": "1"})
    page = cart_page(client)
    assert "Voucher BIG is not applied: Spend €20.00 more to use BIG." in page
    client.post("/checkout/", DETAILS)
    review = client.get("/checkout/review/").content.decode()
    assert "Voucher BIG is not applied" in review
    assert "Place order and pay €34.90" in review
    client.post("/cart/voucher/remove")
    assert "Voucher code" in cart_page(client)
    assert "BIG" not in cart_page(client)


def test_a_signed_in_customer_who_used_a_code_is_told_in_the_cart(client, shop):
    voucher("ONCE", per_customer_limit=1)
    ada = UserFactory()
    place((shop["kettle"], 1), code="once", user_id=ada.pk)
    client.force_login(ada)
    client.post("/cart/add", {"variant": shop["kettle"].pk, "quantity": "1"})
    page = client.post("/cart/voucher", {"code": "once"}, follow=True).content.decode()
    assert "ONCE can be used once per customer, and you have used it already." in page


def test_a_voucher_used_up_between_review_and_placing_sends_the_shopper_back_to_the_review(client, shop):
    voucher("LAST", usage_limit=1)
    client.post("/cart/add", {"variant": shop["kettle"].pk, "quantity": "1"})
    client.post("/cart/voucher", {"code": "last"})
    client.post("/checkout/", DETAILS)
    review = client.get("/checkout/review/").content.decode()
    token = re.search(r'name="token" value="([^"]+)"', review).group(1)
    place((shop["kettle"], 1), code="last", key="someone-else", email="else@example.com")
    response = client.post("/checkout/place/", {"token": token}, follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/checkout/review/"
    assert "This code has been used up. Your order was not placed; please check it again." in page
    assert "Place order and pay €34.90" in page, "the review now prices it without the voucher"
    assert Order.objects.count() == 1


# ---------------------------------------------------------------- the last use, twenty customers at once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_customers_racing_for_the_last_use_give_exactly_one_order(shop):
    """Real threads on PostgreSQL: the voucher's row lock in the order's transaction lets one through."""
    voucher("LASTONE", usage_limit=5, times_used=0)
    Voucher.objects.update(times_used=4)  # one use left

    def buy(i: int) -> str:
        try:
            place((shop["kettle"], 1), code="lastone", key=f"racer-{i}", email=f"racer{i}@example.com")
        except OutOfStock as exc:
            return f"out of stock: {exc}"
        return "placed"

    outcomes = race(buy, refusals=(services.VoucherRefused,))
    assert outcomes.count("placed") == 1, outcomes
    assert outcomes.count("This code has been used up.") == 19, outcomes
    assert Voucher.objects.get().times_used == 5
    assert VoucherUse.objects.count() == Order.objects.count() == 1
    assert OrderLine.objects.get().discount == Decimal("3.00")
    assert StockItem.objects.get(variant=shop["kettle"]).reserved == 1, "the 19 refused hold nothing"
