"""The product page's variant picker, the pictures of the chosen colour, the cart's thumbnails and capped
quantities, as a shopper sees them: headless Chromium against a live server, at 1280 and 390 px. Screenshots go to
var/test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PHONE

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AMBER_TEXT = "rgb(122, 82, 0)"
AMBER_BACKGROUND = "rgb(255, 246, 224)"


def _details():
    from catalog.models import Product
    from catalog.services import product_detail

    for slug in Product.objects.filter(is_active=True).order_by("id").values_list("slug", flat=True):
        yield product_detail(slug=slug)


def _set_stock(variant, on_hand: int) -> None:
    from catalog.services import stock_set

    stock_set(sku=variant.sku, on_hand=on_hand)


def _by_values(detail, *values):
    return next(v for v in detail.variants if detail.values_of(v) == values)


@pytest.fixture
def two_colours(demo_catalog):
    """A demo product in two or more colours and three or more sizes: every variant in stock but the second
    colour's second size, sold out."""
    from catalog.services import product_detail

    detail = next(d for d in _details() if len(d.option_groups) == 2 and len(d.option_groups[0].values) >= 2
                  and len(d.option_groups[1].values) >= 3)  # fmt: skip
    colours, sizes = detail.option_groups[0].values, detail.option_groups[1].values
    for variant in detail.variants:
        _set_stock(variant, 0 if detail.values_of(variant) == (colours[1], sizes[1]) else 10)
    return product_detail(slug=detail.slug)


def _no_sideways_scrolling(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_choosing_a_colour_shows_its_pictures_and_which_sizes_are_left(
    live_server, page, artifacts, two_colours, viewport
):
    from playwright.sync_api import expect

    detail = two_colours
    colour_group, size_group = detail.option_groups
    first, second = colour_group.values[:2]
    if viewport == "phone":
        page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/p/{detail.slug}/")

    colours = page.get_by_role("group", name=re.compile(r"^Colour:"))
    sizes = page.get_by_role("group", name=re.compile(rf"^{size_group.name}:"))
    expect(colours).to_contain_text(f"Colour: {first}")
    main = page.locator("#gallery-main")
    expect(main).to_have_attribute("src", detail.images_for(first)[0].large_url)
    expect(sizes.get_by_role("radio")).to_have_count(len(size_group.values))
    for radio in sizes.get_by_role("radio").all():
        expect(radio).to_be_enabled()  # every size of the first colour is in stock

    colours.get_by_role("radio", name=second, exact=True).check()
    expect(colours).to_contain_text(f"Colour: {second}")
    expect(main).to_have_attribute("src", detail.images_for(second)[0].large_url)
    page.wait_for_function(
        "() => { const i = document.getElementById('gallery-main'); return i.complete && i.naturalWidth > 0 }"
    )
    assert detail.images_for(second)[0].large_url != detail.images_for(first)[0].large_url
    assert detail.images_for(second)[0].colour == second, "the picture of that colour"
    sold_out = sizes.get_by_role("radio", name=f"{size_group.values[1]} (sold out)", exact=True)
    expect(sold_out).to_be_disabled()
    line = page.locator(f'.option:has(input[value="{size_group.values[1]}"]) .option-text')
    assert "line-through" in line.evaluate("e => getComputedStyle(e).textDecorationLine")
    shown = _by_values(detail, second, size_group.values[0])
    expect(sizes.get_by_role("radio", name=size_group.values[0], exact=True)).to_be_checked()
    expect(page.locator("#variant-sku")).to_have_text(shown.sku)
    expect(page.locator("#variant-price")).to_have_text(re.compile(re.escape(f"{shown.price:,.2f}")))
    expect(page.locator("#variant-id")).to_have_value(str(shown.id))
    expect(page.get_by_role("button", name="Add to cart")).to_be_enabled()
    assert page.url.endswith(f"?variant={shown.id}")
    page.screenshot(path=artifacts / f"product-swatches-{viewport}.png", full_page=True)
    if viewport == "phone":
        _no_sideways_scrolling(page)

    # a radio group, as any other: the arrow keys move the choice, with a visible focus ring
    colours.get_by_role("radio", name=second, exact=True).focus()
    page.keyboard.press("ArrowLeft")
    expect(colours.get_by_role("radio", name=first, exact=True)).to_be_checked()
    expect(main).to_have_attribute("src", detail.images_for(first)[0].large_url)
    ring = page.locator(f'.swatch:has(input[value="{first}"])').evaluate("e => getComputedStyle(e).outlineStyle")
    assert ring == "solid", "the focused swatch shows a focus ring"
    expect(sizes.get_by_role("radio", name=size_group.values[1], exact=True)).to_be_enabled()

    # the address is the choice: reloading it shows the same variant, rendered by the server
    page.goto(f"{live_server.url}/p/{detail.slug}/?variant={shown.id}")
    expect(colours).to_contain_text(f"Colour: {second}")
    expect(main).to_have_attribute("src", detail.images_for(second)[0].large_url)
    expect(sizes.get_by_role("radio", name=f"{size_group.values[1]} (sold out)", exact=True)).to_be_disabled()


def test_one_colour_is_said_not_offered_and_one_variant_has_no_picker(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    one_colour = next(d for d in _details() if len(d.option_groups) == 2 and d.option_groups[0].single)
    colour, size_group = one_colour.option_groups[0].values[0], one_colour.option_groups[1]
    page.goto(f"{live_server.url}/p/{one_colour.slug}/")
    expect(page.locator(".option-single")).to_have_text(f"Colour: {colour}")
    expect(page.locator("input[name=o_colour]")).to_have_count(0)
    expect(page.get_by_role("group", name=re.compile(r"^Colour"))).to_have_count(0)
    expect(page.get_by_role("group", name=re.compile(rf"^{size_group.name}:"))).to_be_visible()
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "product-one-colour-phone.png", full_page=True)
    _no_sideways_scrolling(page)

    single = next(d for d in _details() if len(d.variants) == 1 and d.in_stock)
    page.goto(f"{live_server.url}/p/{single.slug}/")
    expect(page.locator(".option-group, .option-single")).to_have_count(0)
    expect(page.locator("input[type=radio]")).to_have_count(0)
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".add-status")).to_contain_text("to your cart")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_asking_for_more_than_is_left_warns_in_amber(live_server, page, artifacts, two_colours, viewport):
    from playwright.sync_api import expect

    detail = two_colours
    variant = detail.variants[0]
    _set_stock(variant, 2)
    name = f"{detail.title} ({variant.label})"
    if viewport == "phone":
        page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/p/{detail.slug}/?variant={variant.id}")
    page.get_by_label("Quantity").fill("5")
    page.get_by_role("button", name="Add to cart").click()
    status = page.get_by_role("status").filter(has_text="reduced")
    expect(status).to_have_text(f"We reduced the quantity of {name} to 2, because only 2 are left.")
    expect(status).to_have_class(re.compile(r"\bwarning\b"))
    assert status.evaluate("e => getComputedStyle(e).color") == AMBER_TEXT
    assert status.evaluate("e => getComputedStyle(e).backgroundColor") == AMBER_BACKGROUND
    expect(page.locator("[data-cart-count]").first).to_have_text("2")
    page.screenshot(path=artifacts / f"product-capped-{viewport}.png", full_page=True)

    # the cart page's form reloads the page: a Django message, of level warning
    _set_stock(variant, 1)
    page.goto(f"{live_server.url}/cart/")
    page.get_by_label("Quantity").fill("4")
    page.get_by_role("button", name="Update").click()
    message = page.locator(".message-warning")
    expect(message).to_have_text(f"We reduced the quantity of {name} to 1, because only 1 is left.")
    assert message.evaluate("e => getComputedStyle(e).backgroundColor") == AMBER_BACKGROUND
    expect(page.locator(".message-success")).to_have_count(0)
    expect(page.get_by_label("Quantity")).to_have_value("1")
    if viewport == "phone":
        _no_sideways_scrolling(page)


def test_cart_thumbnails_show_the_colour_of_each_line(live_server, page, artifacts, two_colours):
    from playwright.sync_api import expect

    from catalog.services import variants_get

    detail = two_colours
    colour_group, size_group = detail.option_groups
    page.goto(f"{live_server.url}/p/{detail.slug}/")
    for colour in colour_group.values[:2]:
        page.get_by_role("radio", name=colour, exact=True).check()
        page.get_by_role("button", name="Add to cart").click()
        expect(page.locator(".add-status")).to_contain_text(f"{colour} / {size_group.values[0]}")
    chosen = [_by_values(detail, colour, size_group.values[0]) for colour in colour_group.values[:2]]

    page.goto(f"{live_server.url}/cart/")
    lines = page.locator(".cart-line")
    expect(lines).to_have_count(2)
    pictures = {v.id: v.image_url for v in variants_get(variant_ids=[v.id for v in chosen]).values()}
    for variant in chosen:
        own = next(i for i in detail.images if i.colour == detail.colour_of(variant))
        assert pictures[variant.id] == own.listing_url, "the listing picture of the line's colour"
        line = lines.filter(has_text=variant.sku)
        expect(line.locator(".cart-image img")).to_have_attribute("src", own.listing_url)
    assert pictures[chosen[0].id] != pictures[chosen[1].id]
    page.screenshot(path=artifacts / "cart-thumbnails.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=artifacts / "cart-thumbnails-phone.png", full_page=True)
    _no_sideways_scrolling(page)
