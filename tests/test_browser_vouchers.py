"""A shopper uses a voucher, as they see it: headless Chromium against a live server, at 1280 and 390 px.
Screenshots go to var/test-artifacts/ (cart-voucher-desktop.png, cart-voucher-phone.png, ...)."""

from __future__ import annotations

import pytest

from tests.conftest import PHONE

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def promoted_product(demo_catalog):
    """The demo shop's vouchers and its promotion (10 % off Home & kitchen), and a product of Home & kitchen."""
    from catalog.models import Category, Product
    from orders.services import vouchers_demo_seed

    home = Category.objects.get(slug="home-kitchen")
    vouchers_demo_seed(category_id=home.pk, category_name=home.name)
    product = (Product.objects.filter(in_stock=True, category__parent__parent=home, min_price__gte=15)
               .order_by("id").first())  # fmt: skip
    assert product is not None
    return product


def test_a_shopper_applies_a_voucher_in_the_cart_and_sees_it_to_the_order_page(
    live_server, page, artifacts, promoted_product
):
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/p/{promoted_product.slug}/")
    page.get_by_label("Quantity").fill("3")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".add-status")).to_contain_text("to your cart")
    page.goto(live_server.url + "/cart/")
    expect(page.locator(".promotion-line")).to_contain_text("Home & kitchen week")

    # a wrong code: a visible error under the field, what was typed kept
    page.get_by_label("Voucher code").fill("WELCOME99")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_have_text("“WELCOME99” is not a valid voucher code. Check it and try again.")
    expect(page.get_by_label("Voucher code")).to_have_value("WELCOME99")
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "cart-voucher-error-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    page.get_by_label("Voucher code").fill(" welcome10 ")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".message-success")).to_contain_text("Voucher WELCOME10 applied.")
    expect(page.locator(".voucher-line")).to_contain_text("WELCOME10")
    expect(page.locator(".voucher-line")).to_contain_text("\N{MINUS SIGN}€")
    expect(page.locator(".subtotal.discounted")).to_contain_text("After discounts")
    page.screenshot(path=artifacts / "cart-voucher-desktop.png", full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator(".voucher-line")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    page.screenshot(path=artifacts / "cart-voucher-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    page.get_by_role("link", name="Go to checkout").click()
    expect(page.locator(".summary .voucher-line")).to_contain_text("WELCOME10")
    page.get_by_label("Email address").fill("sam@example.com")
    page.get_by_label("Full name", exact=True).fill("Sam Buyer")
    page.get_by_label("Address", exact=True).fill("1 Market Street")
    page.get_by_label("Postcode", exact=True).fill("10115")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_role("button", name="Review your order").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    expect(page.locator(".summary .promotion-line")).to_contain_text("Home & kitchen week")
    expect(page.locator(".summary .voucher-line")).to_contain_text("WELCOME10")
    total = page.locator(".summary .total td").inner_text()
    expect(page.locator("#place-order")).to_contain_text(total)
    page.screenshot(path=artifacts / "checkout-review-voucher.png", full_page=True)
    page.locator("#place-order").click()

    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()
    expect(page.locator(".summary .voucher-line")).to_contain_text("WELCOME10")
    page.get_by_role("link", name="See your order").click()
    expect(page.locator(".summary .voucher-line")).to_contain_text("WELCOME10")
    expect(page.locator(".summary .total td")).to_have_text(total)
    page.screenshot(path=artifacts / "order-voucher.png", full_page=True)

    # used: the next cart starts without it
    page.goto(live_server.url + "/cart/")
    expect(page.locator(".voucher-line")).to_have_count(0)
