"""The shop with the keyboard alone: every step of these tests is a key press (Tab, Shift+Tab, Enter, Space, arrow
keys) or typing, after the page is opened by its address. Controls are found by their role and name, so the tests
follow the markup as it changes. Every control the focus reaches must show it (an outline or a shadow, at 3:1 or
more against what is behind it)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PHONE
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the focused element looks like, for failure messages and for the focus-visibility check. The outline's
# contrast is taken against the first non-transparent background behind the element (the outline sits outside it).
_FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
    const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    let behind = [255, 255, 255];
    for (let node = el.parentElement; node; node = node.parentElement) {
        const c = rgb(getComputedStyle(node).backgroundColor);
        if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) { behind = c; break; }
    }
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    const a = lum(rgb(style.outlineColor)), b = lum(behind);
    const rect = el.getBoundingClientRect();
    const label = el.labels && el.labels.length ? el.labels[0].innerText : "";
    return {
        tag: el.tagName.toLowerCase(), type: el.type || "", name: el.name || "", id: el.id,
        text: (el.getAttribute("aria-label") || label || el.innerText || el.value || "").trim().slice(0, 60),
        outline, shadow: style.boxShadow !== "none",
        contrast: outline ? (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) : 0,
        width: rect.width, height: rect.height,
        onScreen: rect.bottom > 0 && rect.right > 0 && rect.top < innerHeight && rect.left < innerWidth,
    };
}"""


def focused(page) -> dict | None:
    return page.evaluate(_FOCUSED)


def _describe(info: dict | None) -> str:
    if info is None:
        return "(nothing)"
    return f"<{info['tag']}{' type=' + info['type'] if info['type'] else ''}> {info['text']!r}"


def tab_to(page, target, *, backwards: bool = False, limit: int = 150) -> None:
    """Press Tab (or Shift+Tab) until `target`, a Playwright locator, has the focus; fail with the path taken."""
    element = target.element_handle(timeout=5000)
    path = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if element.evaluate("el => el === document.activeElement"):
            return
        path.append(_describe(focused(page)))
    raise AssertionError(f"{limit} presses of Tab never reached {target}; the focus went through: " + ", ".join(path))


def type_into(page, target, text: str) -> None:
    """Tab to a text field, clear it and type."""
    tab_to(page, target)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def assert_focus_visible(page) -> dict:
    info = focused(page)
    assert info is not None, "the focus is on the page itself"
    assert info["onScreen"], f"{_describe(info)} is focused off screen"
    assert info["width"] >= 2, f"{_describe(info)} is focused but not visible"
    assert info["height"] >= 2, f"{_describe(info)} is focused but not visible"
    assert info["outline"] or info["shadow"], f"{_describe(info)} shows no outline or shadow when focused"
    if info["outline"] and not info["shadow"]:
        assert info["contrast"] >= 3, f"{_describe(info)}: focus outline contrast {info['contrast']:.1f}:1, under 3:1"
    return info


def _sign_in(page, base: str, email: str) -> None:
    """Set-up for the tests that are about something else: sign in by filling the form."""
    from playwright.sync_api import expect

    page.goto(base + "/account/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# ---------------------------------------------------------------- focus is visible everywhere


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_tab_stop_shows_the_focus(live_server, page, demo_catalog, artifacts, width):
    """Tab through the home page, a category, a product, the cart and the checkout: each stop is on screen and shows
    an outline (3:1 or more) or a shadow."""
    from catalog.models import Product

    if width == "phone":
        page.set_viewport_size(PHONE)
    base = live_server.url
    product = Product.objects.filter(in_stock=True).order_by("id").first()
    customer = UserFactory(email="focus@example.com")
    _sign_in(page, base, customer.email)
    page.goto(f"{base}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("status").filter(has_text="to your cart").wait_for()

    for path in ("/", "/c/clothing/", f"/p/{product.slug}/", "/cart/", "/checkout/", "/account/addresses/new/"):
        page.goto(base + path)
        seen = set()
        for _ in range(60):
            page.keyboard.press("Tab")
            info = focused(page)
            if info is None:
                break  # past the last control
            key = (info["tag"], info["id"], info["name"], info["text"])
            if key in seen:
                break
            seen.add(key)
            try:
                assert_focus_visible(page)
            except AssertionError as problem:
                page.screenshot(path=artifacts / f"focus-problem-{width}.png")
                raise AssertionError(f"{path}: {problem}") from None
        assert len(seen) >= 5, f"{path}: only {len(seen)} controls reached by Tab"
    page.goto(f"{base}/p/{product.slug}/")
    tab_to(page, page.get_by_role("button", name="Add to cart"))
    page.screenshot(path=artifacts / f"keyboard-focus-add-to-cart-{width}.png")


def test_skip_link_then_shift_tab_goes_back(live_server, page):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(skip).to_be_focused()


# ---------------------------------------------------------------- the forms, one by one


def test_search_with_the_keyboard(live_server, page, demo_catalog):
    from playwright.sync_api import expect

    base = live_server.url
    page.goto(base + "/")
    box = page.get_by_label("Search the shop")
    type_into(page, box, "jacket")
    suggestions = page.get_by_role("list", name="Suggestions")
    expect(suggestions).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    first, second = suggestions.get_by_role("link").nth(0), suggestions.get_by_role("link").nth(1)
    page.keyboard.press("ArrowDown")
    expect(first).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("ArrowDown")
    expect(second).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(box).to_be_focused()
    page.keyboard.press("Escape")
    expect(suggestions).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Results for “jacket”")

    # a suggestion, chosen with the arrow keys and Enter, opens that product
    type_into(page, page.get_by_label("Search the shop"), "blanket")
    expect(suggestions).to_be_visible()
    page.keyboard.press("ArrowDown")
    title = page.evaluate("document.activeElement.textContent").strip()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def test_filter_and_sort_a_category_with_the_keyboard(live_server, page, demo_catalog):
    """Space on a filter applies it and the focus comes back to that checkbox; the sort order changes with the
    arrow keys and applies on Enter, not at the first arrow press."""
    from playwright.sync_api import expect

    base = live_server.url
    page.goto(base + "/c/clothing/")
    total = int(page.get_by_text(re.compile(r"^\d+ products?$")).inner_text().split()[0])
    in_stock = page.get_by_role("checkbox", name=re.compile("In stock only"))
    tab_to(page, in_stock)
    page.keyboard.press("Space")
    page.wait_for_url("**in_stock=on**")
    expect(in_stock).to_be_checked()
    expect(in_stock).to_be_focused()
    assert int(page.get_by_text(re.compile(r"^\d+ products?$")).inner_text().split()[0]) <= total

    sort = page.get_by_label("Sort by")
    tab_to(page, sort)
    url = page.url
    page.keyboard.press("ArrowDown")  # Price: low to high
    page.keyboard.press("ArrowDown")  # Price: high to low
    page.wait_for_timeout(300)
    assert page.url == url, "the first arrow press did not reload the page"
    page.keyboard.press("Enter")
    page.wait_for_url("**sort=price_desc**")
    expect(page.get_by_label("Sort by")).to_be_focused()
    expect(page.get_by_label("Sort by")).to_have_value("price_desc")
    expect(page.get_by_role("checkbox", name=re.compile("In stock only"))).to_be_checked()


def test_choose_a_variant_add_to_cart_and_change_the_quantity_with_the_keyboard(live_server, page, demo_catalog):
    from playwright.sync_api import expect

    from catalog.models import Product, Variant

    base = live_server.url
    product = next(
        p
        for p in Product.objects.filter(in_stock=True).order_by("id")
        if sum(1 for v in p.variants.select_related("stock") if v.stock.available >= 3) >= 3
    )
    page.goto(f"{base}/p/{product.slug}/")
    chosen_variant = page.locator("#variant-id")  # the picker's radios are options; the variant is what they make
    first = chosen_variant.input_value()
    tab_to(page, page.get_by_role("radio", checked=True).first)
    add = page.get_by_role("button", name="Add to cart")
    for _ in range(product.variants.count()):  # the next variant that is in stock
        page.keyboard.press("ArrowDown")
        if chosen_variant.input_value() != first and add.is_enabled():
            break
    variant_id = chosen_variant.input_value()
    assert variant_id != first
    variant = Variant.objects.get(pk=variant_id)
    assert f"variant={variant_id}" in page.url

    type_into(page, page.get_by_label("Quantity"), "2")
    tab_to(page, add)
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="to your cart")).to_be_visible()
    expect(page.locator("[data-cart-count]")).to_have_text("2")

    # the cart: the quantity goes up with the arrow key and Update applies it
    tab_to(page, page.get_by_role("link", name=re.compile("^Cart")), backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    expect(page.get_by_text(f"SKU {variant.sku}")).to_be_visible()
    quantity = page.get_by_label("Quantity")
    expect(quantity).to_have_value("2")
    tab_to(page, quantity)
    page.keyboard.press("ArrowUp")
    expect(quantity).to_have_value("3")
    tab_to(page, page.get_by_role("button", name="Update"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Subtotal (3 items)")).to_be_visible()
    expect(page.get_by_label("Quantity")).to_have_value("3")
    expect(page.locator("[data-cart-count]")).to_have_text("3")


def test_checkout_details_to_a_paid_order_with_the_keyboard(live_server, page, demo_catalog, artifacts):
    """A customer with a saved address chooses "A new address" and express delivery with the arrow keys, types the
    address, reviews and pays, all from the keyboard."""
    from playwright.sync_api import expect

    from accounts.services import address_save
    from catalog.models import Product

    base = live_server.url
    customer = UserFactory(email="keys@example.com", full_name="Kay Board")
    address_save(user_id=customer.pk, full_name="Kay Board", line1="1 Market Street", postal_code="10115",
                 city="Berlin", country="DE")  # fmt: skip
    _sign_in(page, base, customer.email)
    product = Product.objects.filter(in_stock=True).order_by("id").first()
    page.goto(f"{base}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("1")

    page.goto(base + "/checkout/")
    saved = page.get_by_role("radio", name=re.compile("1 Market Street"))
    expect(saved).to_be_checked()
    tab_to(page, saved)
    assert_focus_visible(page)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="A new address")).to_be_checked()
    type_into(page, page.get_by_label("Full name", exact=True), "Kay Board")
    type_into(page, page.get_by_label("Address", exact=True), "5 Rue de Rivoli")
    type_into(page, page.get_by_label("Postcode", exact=True), "75001")
    type_into(page, page.get_by_label("City", exact=True), "Paris")
    tab_to(page, page.get_by_label("Country", exact=True))
    page.keyboard.type("France")  # a closed select picks the option its name starts with
    expect(page.get_by_label("Country", exact=True)).to_have_value("FR")
    standard = page.get_by_role("radio", name=re.compile("Standard delivery"))
    expect(standard).to_be_checked()
    tab_to(page, standard)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name=re.compile("Express delivery"))).to_be_checked()
    page.screenshot(path=artifacts / "keyboard-checkout-details.png", full_page=True)
    tab_to(page, page.get_by_role("button", name="Review your order"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    expect(page.get_by_text("5 Rue de Rivoli")).to_be_visible()
    expect(page.locator(".delivery-method").get_by_text(re.compile("Express delivery"))).to_be_visible()
    tab_to(page, page.get_by_role("button", name=re.compile("Place order")))
    page.keyboard.press("Enter")

    card = page.get_by_label("Card number")
    type_into(page, card, "4242 4242 4242 4242")
    tab_to(page, page.get_by_role("button", name=re.compile("^Pay")))
    page.keyboard.press("Space")
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()


def test_sign_up_sign_out_and_sign_in_with_the_keyboard(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    page.goto(base + "/account/signup/")
    type_into(page, page.get_by_label("Email address"), "keyboard@example.com")
    type_into(page, page.get_by_label("Your name"), "Kim Keys")
    type_into(page, page.get_by_label("Password", exact=True), "short")
    type_into(page, page.get_by_label("Password again"), "short")
    page.keyboard.press("Enter")  # from the last field: the form comes back with what is wrong
    password = page.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    type_into(page, password, "plum-orchard-lantern-42")
    type_into(page, page.get_by_label("Password again"), "plum-orchard-lantern-42")
    tab_to(page, page.get_by_role("button", name="Create account"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()

    tab_to(page, page.get_by_role("button", name="Sign out"))
    page.keyboard.press("Space")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    tab_to(page, page.get_by_role("link", name="Sign in"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    type_into(page, page.get_by_label("Email address"), "keyboard@example.com")
    type_into(page, page.get_by_label("Password"), "plum-orchard-lantern-42")
    tab_to(page, page.get_by_role("button", name="Sign in"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_add_an_address_with_the_keyboard(live_server, page):
    from playwright.sync_api import expect

    base = live_server.url
    customer = UserFactory(email="book@example.com")
    _sign_in(page, base, customer.email)
    page.goto(base + "/account/addresses/")
    expect(page.get_by_text("No addresses yet.")).to_be_visible()
    tab_to(page, page.get_by_role("link", name="Add an address"))
    page.keyboard.press("Enter")
    type_into(page, page.get_by_label("Full name", exact=True), "Ada Lovelace")
    type_into(page, page.get_by_label("Address", exact=True), "12 St James's Square")
    type_into(page, page.get_by_label("Postcode", exact=True), "SW1Y 4LB")
    type_into(page, page.get_by_label("City", exact=True), "London")
    tab_to(page, page.get_by_label("Country", exact=True))
    page.keyboard.type("United K")
    expect(page.get_by_label("Country", exact=True)).to_have_value("GB")
    tab_to(page, page.get_by_role("button", name="Save address"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Address book")).to_be_visible()
    expect(page.get_by_text("12 St James's Square")).to_be_visible()
    expect(page.get_by_text("SW1Y 4LB London")).to_be_visible()
