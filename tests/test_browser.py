"""The shop as a person sees it: headless Chromium against a live server. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import DEFAULT_PASSWORD, SuperuserFactory

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_looks_like_a_shop_and_works_with_the_keyboard(live_server, page, artifacts):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/")
    expect(page).to_have_title(re.compile(settings.SHOP_NAME))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome to {settings.SHOP_NAME}")
    stylesheet_applied = page.evaluate("getComputedStyle(document.querySelector('.hero')).backgroundImage")
    assert "gradient" in stylesheet_applied, "the shop's stylesheet is served and applied"
    page.screenshot(path=artifacts / "home-desktop.png", full_page=True)

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"
    page.screenshot(path=artifacts / "home-phone.png", full_page=True)


def test_unknown_address_shows_the_shops_own_404(live_server, page, artifacts):
    from playwright.sync_api import expect

    response = page.goto(live_server.url + "/no-such-page/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("We could not find that page")
    page.get_by_role("link", name="Back to the shop").click()
    expect(page).to_have_url(live_server.url + "/")


def test_staff_member_signs_in_to_the_admin_with_an_email_address(live_server, page, artifacts):
    from playwright.sync_api import expect

    SuperuserFactory(email="boss@example.com")
    page.goto(live_server.url + "/admin/")
    page.get_by_label("Email address").fill("Boss@Example.com")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text(f"{settings.SHOP_NAME} administration")
    expect(page.get_by_role("link", name="Deliveries")).to_be_visible()
    page.screenshot(path=artifacts / "admin-index.png", full_page=True)


# ---------------------------------------------------------------- the catalog in a browser


def test_shopper_browses_filters_and_chooses_a_variant(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Shop by category")).to_be_visible()
    page.screenshot(path=artifacts / "catalog-home.png", full_page=True)

    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Clothing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clothing")
    count_text = page.locator("#results-count").inner_text()
    before = int(count_text.split()[0])

    colour = page.locator("fieldset.facet", has_text="Colour").locator("input[type=checkbox]").first
    colour_value = colour.get_attribute("value")
    expected = int(colour.locator("xpath=..").locator(".count").inner_text().strip("()"))
    colour.check()  # the form applies itself
    page.wait_for_url(f"**o_colour={colour_value}**")
    expect(page.locator("#results-count")).to_have_text(f"{expected} product{'s' if expected != 1 else ''}")
    assert expected <= before
    expect(page.locator(f"input[type=checkbox][name=o_colour][value={colour_value}]")).to_be_checked()
    page.screenshot(path=artifacts / "catalog-category-filtered.png", full_page=True)

    page.locator(".card-link").first.click()
    expect(page.locator("#variant-price")).to_be_visible()
    radios = page.locator(".option-group input[type=radio]:not(:checked):not([disabled])")
    if radios.count():  # the product comes in more than one variant (tests/test_browser_product.py has the rest)
        sku = page.locator("#variant-sku").inner_text()
        radios.last.check()
        expect(page.locator("#variant-sku")).not_to_have_text(sku)
        assert f"variant={page.locator('#variant-id').input_value()}" in page.url
    ld = page.locator('script[type="application/ld+json"]').first.inner_text()
    assert '"@type": "Product"' in ld
    page.screenshot(path=artifacts / "catalog-product.png", full_page=True)

    search = page.get_by_label("Search the shop")
    search.fill("jacket")
    expect(page.locator("#search-suggestions")).to_be_visible()
    search.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Results for “jacket”")
    assert int(page.locator("#results-count").inner_text().split()[0]) > 0
    page.screenshot(path=artifacts / "catalog-search.png", full_page=True)


def test_visitor_cart_merges_into_the_account_on_sign_in(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    from catalog.models import Product

    first, second = Product.objects.filter(in_stock=True).order_by("id")[:2]

    def add_to_cart(product) -> None:
        page.goto(f"{live_server.url}/p/{product.slug}/")
        page.get_by_role("button", name="Add to cart").click()
        expect(page.locator(".add-status")).to_contain_text("to your cart")

    page.goto(live_server.url + "/account/signup/")
    page.get_by_label("Email address").fill("shopper@example.com")
    page.get_by_label("Your name").fill("Sam Shopper")
    page.get_by_label("Password", exact=True).fill("plum-orchard-lantern-42")
    page.get_by_label("Password again").fill("plum-orchard-lantern-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()
    add_to_cart(first)  # in the account's cart
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("[data-cart-count]")).to_have_text("0")

    add_to_cart(first)  # as an anonymous visitor
    add_to_cart(second)
    expect(page.locator("[data-cart-count]")).to_have_text("2")

    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email address").fill("shopper@example.com")
    page.get_by_label("Password").fill("plum-orchard-lantern-42")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Cart").click()
    expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    lines = page.locator(".cart-line")
    expect(lines).to_have_count(2)
    chosen = next(v for v in first.variants.order_by("position", "id").select_related("stock") if v.stock.available)
    expect(page.locator(f"#qty-{chosen.pk}")).to_have_value("2")
    expect(page.locator("[data-cart-count]")).to_have_text("3")
    page.screenshot(path=artifacts / "cart-merged.png", full_page=True)


def test_search_to_paid_order_and_a_declined_card_keeps_the_cart(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    from catalog.models import Product

    product = Product.objects.filter(in_stock=True, title__icontains="jacket").order_by("id").first()
    assert product is not None

    page.goto(live_server.url + "/")
    page.get_by_label("Search the shop").fill("jacket")
    page.get_by_label("Search the shop").press("Enter")
    page.get_by_role("link", name=product.title).first.click()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".add-status")).to_contain_text("to your cart")

    page.goto(live_server.url + "/account/signup/?next=/cart/")
    page.get_by_label("Email address").fill("buyer@example.com")
    page.get_by_label("Password", exact=True).fill("plum-orchard-lantern-42")
    page.get_by_label("Password again").fill("plum-orchard-lantern-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    page.get_by_role("link", name="Go to checkout").click()

    page.get_by_label("Full name", exact=True).fill("Sam Buyer")
    page.get_by_label("Address", exact=True).fill("1 Market Street")
    page.get_by_label("Postcode", exact=True).fill("10115")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_role("button", name="Review your order").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    page.screenshot(path=artifacts / "checkout-review.png", full_page=True)
    page.locator("#place-order").click()

    expect(page.get_by_text("TEST GATEWAY")).to_be_visible()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()
    number = page.locator("#order-number").inner_text()
    page.screenshot(path=artifacts / "checkout-confirmation.png", full_page=True)
    expect(page.locator("[data-cart-count]")).to_have_text("0")

    page.get_by_role("link", name="Orders").click()
    expect(page.get_by_role("link", name=number)).to_be_visible()
    page.get_by_role("link", name=number).click()
    expect(page.locator(".order-status")).to_contain_text("Paid")
    page.screenshot(path=artifacts / "order-detail.png", full_page=True)

    # a second purchase, paid with a card that is declined
    page.goto(f"{live_server.url}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("1")
    page.goto(live_server.url + "/checkout/")
    expect(page.get_by_label(re.compile("1 Market Street, 10115 Berlin, Germany"))).to_be_checked()  # kept
    page.get_by_role("button", name="Review your order").click()
    page.locator("#place-order").click()
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Your payment did not go through")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    page.screenshot(path=artifacts / "checkout-declined.png", full_page=True)
    declined = page.locator("#order-number").inner_text()
    page.get_by_role("link", name="Back to your cart").click()
    expect(page.locator(".cart-line")).to_have_count(1)

    # paying again for the same order, from the history: leaving the gateway's page once, then with a good card
    page.get_by_role("link", name="Orders").click()
    expect(page.get_by_text("Payment failed: Your card was declined.")).to_be_visible()
    page.get_by_role("button", name="Pay again").click()
    page.get_by_role("link", name="Cancel and return to the shop").click()
    expect(page.get_by_role("heading", name="You left the payment page")).to_be_visible()
    page.get_by_role("button", name="Pay again").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()
    expect(page.locator("#order-number")).to_have_text(declined)
    page.screenshot(path=artifacts / "checkout-paid-again.png", full_page=True)
    expect(page.locator("[data-cart-count]")).to_have_text("0")


def _checkout(page, live_server) -> str:
    from playwright.sync_api import expect

    page.goto(live_server.url + "/checkout/")
    new_address = page.get_by_label("A new address")
    if new_address.count():  # a customer with saved addresses
        new_address.check()
    page.get_by_label("Full name", exact=True).fill("Sam Buyer")
    page.get_by_label("Address", exact=True).fill("1 Market Street")
    page.get_by_label("Postcode", exact=True).fill("10115")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_role("button", name="Review your order").click()
    page.locator("#place-order").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()
    return page.locator("#order-number").inner_text()


def test_two_parcels_tracked_by_the_customer_then_a_return_received_and_refunded_by_staff(live_server, artifacts):
    """A customer buys two products; staff ship one parcel, then the other, from the admin; the customer sees both
    tracking links and asks to return one item; staff receive it (back to stock) and refund it."""
    from playwright.sync_api import expect, sync_playwright

    from catalog.models import StockItem
    from orders.services import order_find
    from tests.factories import UserFactory, make_category, make_product

    home = make_category("Home")
    lamp = make_product("Brass Lamp", home, variants=[{"price": "40.00", "stock": 5}])
    vase = make_product("Glass Vase", home, variants=[{"price": "25.00", "stock": 5}])
    UserFactory(email="sam@example.com")
    SuperuserFactory(email="staff@example.com")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        customer = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        staff = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()

        customer.goto(live_server.url + "/account/login/")
        customer.get_by_label("Email address").fill("sam@example.com")
        customer.get_by_label("Password").fill(DEFAULT_PASSWORD)
        customer.get_by_role("button", name="Sign in").click()
        for product in (lamp, vase):
            customer.goto(f"{live_server.url}/p/{product.slug}/")
            customer.get_by_role("button", name="Add to cart").click()
            expect(customer.locator(".add-status")).to_contain_text("to your cart")
        number = _checkout(customer, live_server)
        order = order_find(number=number)

        staff.goto(live_server.url + "/admin/")
        staff.get_by_label("Email address").fill("staff@example.com")
        staff.get_by_label("Password").fill(DEFAULT_PASSWORD)
        staff.get_by_role("button", name="Log in").click()
        for parcel, (product, carrier, tracking) in enumerate([(lamp, "DHL", "JD0001"), (vase, "UPS", "1Z0002")], 1):
            staff.goto(f"{live_server.url}/admin/orders/order/{order.id}/change/")
            staff.get_by_role("link", name="New parcel").click()
            for line in order.lines:
                if line.product_id != product.pk and parcel == 1:
                    staff.locator(f"#id_line_{line.id}").fill("0")
            staff.get_by_label("Carrier", exact=True).select_option(label=carrier)
            staff.get_by_label("Tracking number").fill(tracking)
            if parcel == 1:
                staff.screenshot(path=artifacts / "admin-new-parcel.png", full_page=True)
            staff.get_by_role("button", name="Pack the parcel").click()
            expect(staff.locator(".messagelist")).to_contain_text(f"parcel {parcel} packed and shipped")
        staff.screenshot(path=artifacts / "admin-order-two-parcels.png", full_page=True)
        for parcel in (1, 2):
            staff.get_by_role("button", name=f"Parcel {parcel}: mark delivered").click()
        expect(staff.locator(".field-status, .readonly").first).to_be_visible()

        customer.goto(f"{live_server.url}/orders/{number}/")
        expect(customer.locator(".order-status")).to_contain_text("Delivered")
        expect(customer.get_by_role("link", name="Track parcel 1")).to_have_attribute("href", re.compile("JD0001"))
        expect(customer.get_by_role("link", name="Track parcel 2")).to_have_attribute("href", re.compile("1Z0002"))
        customer.screenshot(path=artifacts / "order-two-parcels.png", full_page=True)
        customer.get_by_text("Return items").click()
        customer.get_by_label("Brass Lamp").select_option("1")
        customer.get_by_label("Reason").select_option(label="Arrived damaged")
        customer.get_by_role("button", name="Ask to return these items").click()
        expect(customer.get_by_text("Return 1 is registered")).to_be_visible()
        customer.set_viewport_size({"width": 390, "height": 844})
        customer.screenshot(path=artifacts / "order-return-requested-phone.png", full_page=True)
        assert customer.evaluate("document.documentElement.scrollWidth") <= 390

        staff.goto(f"{live_server.url}/admin/orders/order/{order.id}/change/")
        staff.get_by_role("link", name="Return 1 (requested)").click()
        staff.get_by_role("button", name="Received").click()
        expect(staff.locator(".messagelist")).to_contain_text("return 1 received")
        staff.get_by_role("button", name="Refund", exact=True).click()
        expect(staff.locator(".messagelist")).to_contain_text("refunded")
        staff.screenshot(path=artifacts / "admin-return-refunded.png", full_page=True)

        customer.goto(f"{live_server.url}/orders/{number}/")
        expect(customer.locator(".order-status")).to_contain_text("Partly returned")
        expect(customer.locator(".refunded")).to_contain_text("40.00")
        customer.set_viewport_size({"width": 1280, "height": 860})
        customer.screenshot(path=artifacts / "order-returned-refunded.png", full_page=True)
        browser.close()
    assert StockItem.objects.get(variant=lamp.variants.get()).on_hand == 5, "sold one, got it back"
