"""The cart: visitor and customer carts, merge on sign-in, fresh prices and stock, bad input, SQL budget."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.events import UserDeleted
from catalog.models import Product, StockItem, Variant
from catalog.services import refresh_products
from shop.handlers import drop_cart_of_deleted_user
from shop.models import CartLine
from tests.factories import DEFAULT_PASSWORD, UserFactory, make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]


@pytest.fixture
def goods():
    shelf = make_category("Kitchen")
    pan = make_product("Iron Pan", shelf, variants=[{"options": {"Size": "24 cm"}, "price": "40.00", "stock": 5}])
    mug = make_product("Stone Mug", shelf, variants=[{"options": {"Colour": "Sand"}, "price": "12.00", "stock": 50}])
    return {"pan": pan.variants.get(), "mug": mug.variants.get()}


def add(client, variant, quantity="1", next=None, **headers):
    data = {"variant": getattr(variant, "pk", variant), "quantity": quantity}
    if next:
        data["next"] = next
    return client.post("/cart/add", data, **headers)


def cart_of(client) -> dict[int, int]:
    """variant id -> quantity, as the cart page's own data says."""
    cart = client.get("/cart/").context["cart"]
    return {line.variant_id: line.quantity for line in cart.lines}


def test_visitor_adds_changes_and_removes(client, goods):
    response = add(client, goods["pan"], "2", next="/p/iron-pan/")
    assert response.status_code == 302
    assert response["Location"] == "/p/iron-pan/"
    add(client, goods["mug"])
    add(client, goods["pan"])
    assert cart_of(client) == {goods["pan"].pk: 3, goods["mug"].pk: 1}
    client.post("/cart/update", {"variant": goods["mug"].pk, "quantity": "4"})
    client.post("/cart/remove", {"variant": goods["pan"].pk})
    assert cart_of(client) == {goods["mug"].pk: 4}
    client.post("/cart/update", {"variant": goods["mug"].pk, "quantity": "0"})
    assert cart_of(client) == {}
    assert "Your cart is empty." in client.get("/cart/").content.decode()


def test_add_without_reload_answers_json_with_the_new_count(client, goods):
    response = add(client, goods["mug"], "3", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["count"] == 3
    bad = add(client, goods["mug"], "abc", HTTP_ACCEPT="application/json")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "Enter a quantity from 1 to 99."


def test_quantities_are_capped_at_what_is_in_stock(client, goods):
    response = add(client, goods["pan"], "9", HTTP_ACCEPT="application/json")
    assert response.json()["quantity"] == 5
    assert response.json()["message"] == "We reduced the quantity of Iron Pan (24 cm) to 5, because only 5 are left."
    assert response.json()["level"] == "warning", "a capped quantity is a warning, not a success"
    StockItem.objects.filter(variant=goods["mug"]).update(on_hand=0)
    sold_out = add(client, goods["mug"], HTTP_ACCEPT="application/json")
    assert sold_out.status_code == 400
    assert "out of stock" in sold_out.json()["error"]["message"]


def test_cart_merges_into_the_account_on_sign_in_capped_at_stock(client, goods):
    user = UserFactory(email="ada@example.com")
    CartLine.objects.create(user_id=user.pk, variant_id=goods["pan"].pk, quantity=4, price_seen=Decimal("40.00"))
    add(client, goods["pan"], "3")
    add(client, goods["mug"], "2")
    response = client.post(
        "/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD}, follow=True
    )
    assert "We reduced the quantity of Iron Pan (24 cm) to 5, because only 5 are left." in response.content.decode()
    assert cart_of(client) == {goods["pan"].pk: 5, goods["mug"].pk: 2}
    assert CartLine.objects.filter(user_id=user.pk).count() == 2

    client.post("/account/logout/")
    assert cart_of(client) == {}, "signed out: the account's cart stays with the account"
    other = Client()
    other.login(email="ada@example.com", password=DEFAULT_PASSWORD)
    assert cart_of(other) == {goods["pan"].pk: 5, goods["mug"].pk: 2}, "the cart follows the customer"


def test_changed_prices_are_flagged_once_and_totals_use_the_new_price(client, goods):
    add(client, goods["mug"], "2")
    Variant.objects.filter(pk=goods["mug"].pk).update(price=Decimal("15.00"))
    refresh_products(product_ids=[goods["mug"].product_id])
    page = client.get("/cart/").content.decode()
    assert "The price changed from €12.00 to €15.00" in page
    assert f'href="/p/{goods["mug"].product.slug}/?variant={goods["mug"].pk}"' in page
    assert "€30.00" in page
    assert "The price changed" not in client.get("/cart/").content.decode()


def test_variants_taken_off_sale_or_out_of_stock_are_flagged_and_not_counted(client, goods):
    add(client, goods["mug"], "2")
    add(client, goods["pan"], "3")
    Product.objects.filter(pk=goods["pan"].product_id).update(is_active=False)
    StockItem.objects.filter(variant=goods["mug"]).update(on_hand=1)
    cart = client.get("/cart/").context["cart"]
    page = client.get("/cart/").content.decode()
    assert "This product was taken off sale." in page
    assert "Only 1 left: lower the quantity to buy it." in page
    assert cart.subtotal == Decimal("0")
    assert cart.has_problems


@pytest.mark.parametrize("quantity", ["0", "-3", str(10**9), "abc", "", "1.5", " "])
def test_bad_quantities_are_refused_with_a_message_and_change_nothing(client, goods, quantity):
    add(client, goods["mug"], "2")
    response = add(client, goods["mug"], quantity, next="/cart/")
    assert response.status_code == 302
    page = client.get("/cart/").content.decode()
    assert "Enter a quantity from 1 to 99." in page
    assert cart_of(client) == {goods["mug"].pk: 2}


@pytest.mark.parametrize("variant", ["999999", "abc", "", "-1", "1" * 40])
def test_unknown_variants_are_refused_and_change_nothing(client, goods, variant):
    add(client, goods["mug"], "2")
    response = add(client, variant, "1", HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert cart_of(client) == {goods["mug"].pk: 2}


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(goods):
    strict = Client(enforce_csrf_checks=True)
    strict.get("/")
    response = strict.post("/cart/add", {"variant": goods["mug"].pk, "quantity": "1"})
    assert response.status_code == 403
    assert "This form expired or came from elsewhere" in response.content.decode()
    assert cart_of(strict) == {}
    as_json = strict.post("/cart/add", {"variant": goods["mug"].pk}, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 403
    assert as_json.json()["error"]["code"] == "csrf_failed"


def test_one_customer_never_touches_anothers_cart(goods):
    alice, bob = UserFactory(), UserFactory()
    CartLine.objects.create(user_id=alice.pk, variant_id=goods["pan"].pk, quantity=2, price_seen=Decimal("40.00"))
    client = Client()
    client.force_login(bob)
    assert cart_of(client) == {}
    for url, data in [("/cart/update", {"quantity": "9"}), ("/cart/remove", {})]:
        response = client.post(url, {"variant": goods["pan"].pk, **data}, HTTP_ACCEPT="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "That item is not in your cart."
    assert list(CartLine.objects.filter(user_id=alice.pk).values_list("quantity", flat=True)) == [2]


def test_get_is_not_allowed_on_cart_actions(client, goods):
    assert client.get("/cart/add", {"variant": goods["mug"].pk}).status_code == 405


# ---------------------------------------------------------------- SQL budget


def _many_variants(n: int) -> list[Variant]:
    shelf = make_category("Bulk")
    variants = [{"options": {"Size": str(i)}, "price": "5.00", "stock": 10} for i in range(n)]
    return list(make_product("Bulk Socks", shelf, variants=variants).variants.all())


def _queries(client, method: str, url: str, data: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        getattr(client, method)(url, data or {})
    return len(ctx.captured_queries)


@pytest.mark.parametrize("signed_in", [False, True])
def test_adding_and_showing_the_cart_cost_the_same_whatever_its_size(client, goods, signed_in):
    if signed_in:
        client.force_login(UserFactory())
    variants = _many_variants(21)
    client.get("/")  # the category tree for the header is read once, then cached
    add(client, variants[0])
    client.get("/cart/")  # so are the promotions running, for the cart's discounts (orders.vouchers)
    add_small = _queries(client, "post", "/cart/add", {"variant": variants[1].pk, "quantity": "1"})
    show_small = _queries(client, "get", "/cart/")
    for v in variants[2:20]:
        add(client, v)
    assert len(cart_of(client)) == 20
    add_large = _queries(client, "post", "/cart/add", {"variant": variants[20].pk, "quantity": "1"})
    client.post("/cart/remove", {"variant": variants[20].pk})
    show_large = _queries(client, "get", "/cart/")
    assert add_small == add_large
    assert show_small == show_large
    assert show_large <= 8


def test_deleting_the_account_removes_its_cart_lines(goods, django_capture_on_commit_callbacks):
    """Cart lines keep the user id without a foreign key: shop drops them on accounts.user.deleted.v1."""
    ada, bob = UserFactory(), UserFactory()
    for user in (ada, bob):
        CartLine.objects.create(user_id=user.pk, variant_id=goods["mug"].pk, quantity=2, price_seen=Decimal("12.00"))
    client = Client()
    client.force_login(ada)
    add(client, goods["pan"])
    assert CartLine.objects.filter(user_id=ada.pk).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/delete/", {"password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert not CartLine.objects.filter(user_id=ada.pk).exists()
    assert list(CartLine.objects.filter(user_id=bob.pk).values_list("quantity", flat=True)) == [2], "others' stay"

    drop_cart_of_deleted_user(UserDeleted(user_id=ada.pk))  # delivered again: nothing left to do, no error
    assert not CartLine.objects.filter(user_id=ada.pk).exists()
