"""The recommendation slots as a shopper sees them, in headless Chromium at 1280 and 390 px, filled from real
co-purchases: paid orders go through orders' events into recommendations' ledger, recs_build relates the products,
and the pages show the result. Screenshots: var/test-artifacts/recs-*.png."""

from __future__ import annotations

import random

import pytest

from tests.conftest import PHONE

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _co_purchases(settings) -> dict:
    """Paid orders with a taste the model is not told: buyers of the anchor product also take some of its six
    companions; everyone else buys at random. Returns the anchor, its companions and the buyers' ids."""
    from catalog.models import Product
    from kernel.bus import publish
    from kernel.db import atomic
    from orders.events import OrderPaid
    from recommendations.services import recs_build

    settings.RECS_REBUILD_EVERY = 0  # one build at the end, not one per N orders
    on_sale = list(Product.objects.filter(is_active=True, in_stock=True).order_by("id").values_list("id", flat=True))
    anchor, companions, others = on_sale[0], on_sale[1:7], on_sale[7:]
    rng = random.Random(16)
    baskets = []
    for _ in range(40):
        baskets.append([anchor, *rng.sample(companions, 3), *rng.sample(others, 1)])
    for _ in range(60):
        baskets.append(rng.sample(others, 3))
    for number, basket in enumerate(baskets, 1):
        with atomic(module="orders"):
            publish(OrderPaid(order_id=number, number=f"NW-{number}", user_id=1000 + number,
                              product_ids=tuple(basket)))  # fmt: skip
    report = recs_build()
    assert report.orders == len(baskets)
    return {"anchor": Product.objects.get(pk=anchor), "companions": set(companions)}


def _no_sideways_scroll(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "no sideways scrolling of the page"


def _slot_ids(page, name: str) -> list[int]:
    return [int(x) for x in page.locator(f"#recs-{name} li[data-product-id]").evaluate_all(
        "els => els.map(e => e.dataset.productId)")]  # fmt: skip


def test_the_slots_are_filled_from_real_co_purchases_at_desktop_and_phone_widths(
    live_server, page, demo_catalog, artifacts, settings
):
    _walk(live_server, page, artifacts, settings, check=lambda page: None, shots=True)


@pytest.mark.axe
def test_the_slots_have_no_serious_accessibility_problems(live_server, page, demo_catalog, artifacts, settings):
    from tests.axe import assert_accessible

    _walk(live_server, page, artifacts, settings, check=assert_accessible, shots=False)


def _walk(live_server, page, artifacts, settings, *, check, shots: bool) -> None:
    """Product page at 1280 and 390 px, the cart with a one-click Add, the home page after a few views."""
    from playwright.sync_api import expect

    def screenshot(name: str) -> None:
        if shots:
            page.screenshot(path=artifacts / name, full_page=True)

    data = _co_purchases(settings)
    anchor = data["anchor"]
    base = live_server.url

    # the product page: its companions first, in a headed section, scrolling inside its own row
    page.goto(f"{base}/p/{anchor.slug}/")
    slot = page.get_by_role("region", name="Customers who bought this also bought")
    expect(slot).to_be_visible()
    shown = _slot_ids(page, "also-bought")
    assert set(shown[:6]) == data["companions"], "the six products bought with it come first"
    assert anchor.pk not in shown
    assert len(shown) <= 8
    _no_sideways_scroll(page, 1280)
    slot.scroll_into_view_if_needed()
    screenshot("recs-product-desktop.png")
    check(page)

    page.set_viewport_size(PHONE)
    page.reload()
    expect(slot).to_be_visible()
    _no_sideways_scroll(page, PHONE["width"])
    row = page.locator("#recs-also-bought .recs-row")
    assert row.evaluate("el => el.scrollWidth > el.clientWidth"), "the row scrolls sideways inside itself"
    screenshot("recs-product-phone.png")
    check(page)

    # the cart: the anchor in it, "Frequently bought together" with a one-click Add through the JSON path
    page.set_viewport_size({"width": 1280, "height": 860})
    page.locator("#add-to-cart").click()
    expect(page.locator(".add-status")).to_contain_text("cart")
    page.goto(f"{base}/cart/")
    together = page.get_by_role("region", name="Frequently bought together")
    expect(together).to_be_visible()
    offered = _slot_ids(page, "together")
    assert set(offered[:6]) == data["companions"]
    first = together.locator("li").first
    title = first.locator(".card-title").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/cart/add")) as added:
        first.get_by_role("button", name=f"Add {title} to your cart").click()
    assert added.value.headers["content-type"].startswith("application/json"), "added without leaving the page"
    expect(page.locator(".cart-lines")).to_contain_text(title)
    expect(page.locator("#main .message").first).to_contain_text(title)
    assert offered[0] not in _slot_ids(page, "together"), "what is in the cart leaves the slot"
    check(page)
    screenshot("recs-cart.png")

    # the home page: recommended from what this visitor viewed, and what they viewed
    others = list(offered[1:4])
    from catalog.models import Product

    for product in Product.objects.filter(pk__in=others):
        page.goto(f"{base}/p/{product.slug}/")
    page.goto(f"{base}/")
    expect(page.get_by_role("region", name="Recently viewed")).to_be_visible()
    recent = _slot_ids(page, "recent")
    assert set(recent) == set(others), "what they viewed and is not in the cart"
    expect(page.get_by_role("region", name="Recommended for you")).to_be_visible()
    assert anchor.pk not in _slot_ids(page, "for-you")
    _no_sideways_scroll(page, 1280)
    check(page)
    screenshot("recs-home.png")
    page.set_viewport_size(PHONE)
    page.reload()
    _no_sideways_scroll(page, PHONE["width"])
    screenshot("recs-home-phone.png")
