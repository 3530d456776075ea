"""Issue 15 in a browser, at 1280 and 390 px: the cart's totals, and a signed-in customer's checkout with its name
and email prefilled, express delivery in the summary at once, a billing address of its own, the order page naming
the country, and the address kept in the address book. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DESKTOP, PHONE
from tests.factories import DEFAULT_PASSWORD, UserFactory, make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in_and_add(page, live_server, product) -> None:
    """Ada signs in and puts one of the product in her cart from its page."""
    from playwright.sync_api import expect

    page.goto(live_server.url + "/account/login/")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".add-status")).to_contain_text("to your cart")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_signed_in_customer_checks_out_with_express_delivery_and_a_billing_address(
    live_server, page, artifacts, viewport
):
    from playwright.sync_api import expect

    from accounts.services import address_list

    lamp = make_product("Brass Lamp", make_category("Lighting"), variants=[{"price": "37.60", "stock": 5}])
    user = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    size = DESKTOP if viewport == "desktop" else PHONE
    page.set_viewport_size(size)

    _sign_in_and_add(page, live_server, lamp)

    page.goto(live_server.url + "/cart/")
    summary = page.get_by_role("complementary", name="Summary")
    expect(summary).to_contain_text("Prices include VAT: the total includes €7.08 VAT.")
    expect(summary.locator("[data-cart-delivery]")).to_have_text("from €4.90")
    expect(summary.locator("[data-free-delivery]")).to_have_text("Add €12.40 more for free standard delivery.")
    page.screenshot(path=artifacts / f"cart-totals{'' if viewport == 'desktop' else '-phone'}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]

    page.get_by_role("link", name="Go to checkout").click()
    expect(page.get_by_label("Email address")).to_have_value("ada@example.com")
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Ada Lovelace")
    expect(page.get_by_role("heading", name="Delivery address")).to_be_visible()
    expect(page.get_by_role("heading", name="Delivery method")).to_be_visible()
    expect(page.get_by_label("Save this address to my address book")).to_be_checked()
    assert page.get_by_label("Country", exact=True).evaluate("s => s.options[s.selectedIndex].text") == "Germany"

    total = page.locator("[data-summary-total]")
    expect(total).to_have_text("€42.50")
    page.evaluate("window.notReloaded = true")
    page.get_by_label(re.compile("Express delivery")).check()
    expect(total).to_have_text("€47.50")
    expect(page.locator("[data-summary-shipping]")).to_have_text("€9.90")
    expect(page.locator("[data-summary-method]")).to_have_text("(Express delivery)")
    assert page.evaluate("window.notReloaded === true"), "the summary changed without a reload"

    billing = page.locator("#billing-fields")
    expect(billing).to_be_hidden()
    page.get_by_label("Address", exact=True).fill("1 Market Street")
    page.get_by_label("Postcode", exact=True).fill("10115")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_label("Billing address same as delivery").uncheck()
    expect(billing).to_be_visible()
    expect(page.get_by_label("Billing Full name")).to_be_focused()
    page.get_by_role("button", name="Review your order").click()
    expect(page.get_by_text("Enter the name the invoice is made out to.")).to_be_visible()
    expect(page.get_by_text("Enter the billing street and house number.")).to_be_visible()
    expect(page.locator("[data-summary-total]")).to_have_text("€47.50")  # still express after the error
    expect(page.get_by_label("Billing address same as delivery")).not_to_be_checked()
    expect(billing).to_be_visible()
    page.get_by_label("Billing Full name").fill("Analytical Engines Ltd")
    page.get_by_label("Billing Address", exact=True).fill("12 St James's Square")
    page.get_by_label("Billing Postcode").fill("SW1Y 4JH")
    page.get_by_label("Billing City").fill("London")
    page.get_by_label("Billing Country").select_option(label="United Kingdom")
    page.screenshot(path=artifacts / f"checkout-{viewport}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], "no sideways scrolling"
    page.get_by_role("button", name="Review your order").click()

    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    expect(page.locator(".delivery-address")).to_contain_text("Germany")
    expect(page.locator(".delivery-address")).not_to_contain_text("DE")
    expect(page.locator(".billing-address")).to_contain_text("United Kingdom")
    expect(page.locator(".delivery-method")).to_contain_text("Express delivery")
    expect(page.locator("#place-order")).to_have_text("Place order and pay €47.50")
    page.screenshot(path=artifacts / f"checkout-review{'' if viewport == 'desktop' else '-phone'}.png", full_page=True)
    page.locator("#place-order").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()

    page.get_by_role("link", name="See your order").click()
    expect(page.locator(".delivery-address")).to_contain_text("1 Market Street")
    expect(page.locator(".delivery-address")).to_contain_text("Germany")
    expect(page.locator(".billing-address")).to_contain_text("Analytical Engines Ltd")
    expect(page.locator(".billing-address")).to_contain_text("United Kingdom")
    page.screenshot(path=artifacts / f"checkout-order-{viewport}.png", full_page=True)

    page.goto(live_server.url + "/account/addresses/")
    expect(page.locator(".address-card")).to_have_count(1)
    expect(page.locator(".address-card")).to_contain_text("1 Market Street")
    expect(page.locator(".address-card")).to_contain_text("Germany")
    (saved,) = address_list(user_id=user.pk)
    assert (saved.city, saved.country) == ("Berlin", "DE")


def test_a_customer_with_saved_addresses_sees_the_new_address_fields_only_when_asking_for_them(
    live_server, page, artifacts
):
    from playwright.sync_api import expect

    from accounts.services import address_save, address_set_default

    lamp = make_product("Brass Lamp", make_category("Lighting"), variants=[{"price": "60.00", "stock": 5}])
    user = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    home = address_save(user_id=user.pk, full_name="Ada Lovelace", line1="1 Market Street", postal_code="10115",
                        city="Berlin", country="DE")  # fmt: skip
    office = address_save(user_id=user.pk, full_name="Ada Lovelace", line1="9 Ring", postal_code="1010",
                          city="Vienna", country="AT")  # fmt: skip
    address_set_default(user_id=user.pk, address_id=office.id, shipping=True)
    page.set_viewport_size(PHONE)
    _sign_in_and_add(page, live_server, lamp)

    page.goto(live_server.url + "/cart/")
    expect(page.locator("[data-cart-delivery]")).to_have_text("Free")
    expect(page.locator("[data-free-delivery]")).to_contain_text("Free delivery")

    page.goto(live_server.url + "/checkout/")
    expect(page.get_by_label("Ada Lovelace, 9 Ring, 1010 Vienna, Austria")).to_be_checked()
    expect(page.get_by_label("Ada Lovelace, 1 Market Street, 10115 Berlin, Germany")).not_to_be_checked()
    new_fields = page.locator("#new-address")
    expect(new_fields).to_be_hidden()
    page.screenshot(path=artifacts / "checkout-saved-addresses-phone.png", full_page=True)
    page.get_by_label("A new address").check()
    expect(new_fields).to_be_visible()
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Ada Lovelace")
    page.get_by_label("Ada Lovelace, 1 Market Street, 10115 Berlin, Germany").check()
    expect(new_fields).to_be_hidden()
    page.get_by_role("button", name="Review your order").click()
    expect(page.locator(".delivery-address")).to_contain_text("1 Market Street")
    expect(page.locator(".delivery-address")).to_contain_text("Germany")
    assert home.id != office.id
