"""The customer's account in a browser: signing up from the cart comes back to it, the order history with its
pictures, the order page (delivery, payment, product links) and cancelling with a confirmation; at 1280 and 390 px.
Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DESKTOP, PHONE
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ADDRESS = {"full_name": "Sam Shopper", "line1": "1 Market Street", "postal_code": "10115", "city": "Berlin",
           "country": "DE"}  # fmt: skip


def in_stock(count: int):
    """Active products with a variant in stock, and that variant."""
    from catalog.models import Product

    found = []
    for product in Product.objects.filter(in_stock=True).order_by("id")[: count * 3]:
        variant = next((v for v in product.variants.order_by("position", "id").select_related("stock")
                        if v.is_active and v.stock.available >= 2), None)  # fmt: skip
        if variant is not None:
            found.append((product, variant))
        if len(found) == count:
            return found
    raise AssertionError("the demo catalog has too few products in stock")


def no_sideways_scroll(page) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"no sideways scrolling at {width} px"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_signing_up_from_the_cart_comes_back_to_the_cart_with_it(live_server, page, artifacts, demo_catalog,
                                                                 viewport):  # fmt: skip
    from playwright.sync_api import expect

    page.set_viewport_size(viewport)
    (product, _variant), (other, _) = in_stock(2)
    for item in (product, other):
        page.goto(f"{live_server.url}/p/{item.slug}/")
        page.get_by_role("button", name="Add to cart").click()
        expect(page.locator(".add-status")).to_contain_text("to your cart")
    page.goto(live_server.url + "/cart/")
    expect(page.locator(".cart-line")).to_have_count(2)
    page.screenshot(path=artifacts / f"cart-signed-out-{'phone' if viewport == PHONE else 'desktop'}.png",
                    full_page=True)  # fmt: skip
    page.locator(".account-prompt").get_by_role("link", name="create an account").click()
    expect(page).to_have_url(re.compile(r"/account/signup/\?next=/cart/$"))
    page.get_by_label("Email address").fill(f"new-{viewport['width']}@example.com")
    page.get_by_label("Your name").fill("Sam Shopper")
    page.get_by_label("Password", exact=True).fill("plum-orchard-lantern-42")
    page.get_by_label("Password again").fill("plum-orchard-lantern-42")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(live_server.url + "/cart/")
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()
    expect(page.locator(".cart-line")).to_have_count(2)  # the visitor's cart is the account's now
    expect(page.locator("[data-cart-count]")).to_have_text("2")
    expect(page.locator(".account-prompt")).to_have_count(0)
    no_sideways_scroll(page)
    page.screenshot(path=artifacts / f"cart-after-signup-{'phone' if viewport == PHONE else 'desktop'}.png",
                    full_page=True)  # fmt: skip

    # Signed out, the checkout offers to sign in and comes back to it
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{live_server.url}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".add-status")).to_contain_text("to your cart")
    page.goto(live_server.url + "/checkout/")
    page.locator(".account-prompt").get_by_role("link", name="Sign in").click()
    page.get_by_label("Email address").fill(f"new-{viewport['width']}@example.com")
    page.get_by_label("Password").fill("plum-orchard-lantern-42")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/checkout/")
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    expect(page.locator("[data-cart-count]")).to_have_text("3")  # merged: 2 of the first product, 1 of the other


def orders_of(user, products) -> tuple[str, str]:
    """A paid order of four products (for the history's "and 1 more") and an older one of one product that has
    since been taken off sale."""
    from catalog.models import Product
    from orders import services
    from tests.test_orders import pay

    gone = services.order_place(idempotency_key="old", lines=[(products[4][1].pk, 1)], shipping_method="standard",
                                shipping_address=ADDRESS, email=user.email, user_id=user.pk)  # fmt: skip
    pay(gone)
    Product.objects.filter(pk=products[4][0].pk).update(is_active=False)
    recent = services.order_place(idempotency_key="recent", lines=[(v.pk, i + 1) for i, (_, v) in
                                                                  enumerate(products[:4])],
                                  shipping_method="express", shipping_address=ADDRESS, email=user.email,
                                  user_id=user.pk)  # fmt: skip
    pay(recent)
    return recent.number, gone.number


def sign_in(page, live_server, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/account/login/?next={next_url}")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_history_order_page_and_cancelling_with_a_confirmation(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    from orders.services import order_find

    products = in_stock(5)
    sam = UserFactory(email="sam@example.com")
    number, old = orders_of(sam, products)
    sign_in(page, live_server, sam.email, "/orders/")

    # The history: date, status, total, item count, the first items pictured and named
    expect(page.get_by_role("heading", name="Your orders")).to_be_visible()
    cards = page.locator(".order-card")
    expect(cards).to_have_count(2)
    recent = cards.filter(has_text=number)
    expect(recent).to_contain_text("10 items")  # 1 + 2 + 3 + 4
    expect(recent).to_contain_text("Paid")
    expect(recent).to_contain_text(order_find(number=number).total.to_eng_string())
    expect(recent.locator(".order-card-items img")).to_have_count(3)
    for product, _ in products[:3]:
        expect(recent.get_by_role("link", name=product.title)).to_have_attribute("href", re.compile(product.slug))
    expect(recent).to_contain_text("and 1 more")
    older = cards.filter(has_text=old)
    expect(older).to_contain_text(products[4][0].title)
    expect(older.get_by_role("link", name=products[4][0].title)).to_have_count(0)  # off sale: named, not linked
    expect(older.locator(".thumb-placeholder")).to_have_count(1)
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)"), "pictures load"
    page.screenshot(path=artifacts / "orders-history.png", full_page=True)
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    page.screenshot(path=artifacts / "orders-history-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)

    # The order page: delivery and payment method, each line linked to its product with its picture
    recent.get_by_role("link", name=f"Order {number}").click()
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    expect(page.locator(".delivery-method")).to_have_text("Express delivery")
    expect(page.locator(".payment-method")).to_have_text("Card, through the test gateway")
    summary = page.locator("table.summary")
    expect(summary.locator("img")).to_have_count(4)
    first_product = products[0][0]
    link = summary.get_by_role("link", name=first_product.title)
    expect(link).to_have_attribute("href", re.compile(rf"^/p/{first_product.slug}/\?variant={products[0][1].pk}$"))
    page.screenshot(path=artifacts / "order-page-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.reload()
    no_sideways_scroll(page)
    page.screenshot(path=artifacts / "order-page-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    link.click()
    expect(page).to_have_url(re.compile(rf"/p/{first_product.slug}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(first_product.title)

    # Cancelling asks first; keeping the order changes nothing; only "Yes, cancel" cancels
    page.go_back()
    page.get_by_role("link", name="Cancel this order").click()
    expect(page.get_by_role("heading", name=f"Cancel order {number}?")).to_be_visible()
    expect(page.locator(".cancel-money")).to_contain_text("Nothing will be charged")
    page.screenshot(path=artifacts / "cancel-confirm.png", full_page=True)
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    page.screenshot(path=artifacts / "cancel-confirm-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="Keep my order").click()
    expect(page.locator(".order-status")).to_contain_text("Paid")
    assert order_find(number=number).status == "paid"
    page.get_by_role("link", name="Cancel this order").click()
    page.get_by_role("button", name="Yes, cancel").click()
    expect(page.get_by_text("Your order is cancelled.")).to_be_visible()
    expect(page.locator(".order-status")).to_contain_text("Cancelled")
    expect(page.get_by_role("link", name="Cancel this order")).to_have_count(0)
    assert order_find(number=number).status == "cancelled"
