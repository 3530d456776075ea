"""The category page, the category bar and the info pages as a shopper sees them, at 1280 and 390 px: active
filter chips, the phone's filter panel, the category menu, a footer link. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import pytest

from tests.conftest import PHONE

pytestmark = [pytest.mark.modules, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def results(page) -> int:
    return int(page.locator("#results-count").inner_text().split()[0])


def facet_boxes(page, legend: str):
    return page.locator("fieldset.facet", has=page.locator("legend", has_text=legend)).locator("input[type=checkbox]")


def count_of(box) -> int:
    return int(box.locator("xpath=..").locator(".count").inner_text().strip("()"))


def test_two_filters_make_two_chips_and_removing_one_changes_the_listing(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/c/clothing/?sort=price_asc")
    colour = facet_boxes(page, "Colour").first
    colour_value = colour.get_attribute("value")
    colour.check()  # the form applies itself
    page.wait_for_url(f"**o_colour={colour_value}**")
    with_colour = results(page)
    brands = facet_boxes(page, "Brand")
    brand = next(brands.nth(i) for i in range(brands.count()) if 0 < count_of(brands.nth(i)) < with_colour)
    brand_name = brand.locator("xpath=..").inner_text().rsplit("(", 1)[0].strip()
    brand.check()
    page.wait_for_url("**brand=**")
    chips = page.locator(".active-filters .chip-remove")
    expect(chips).to_have_count(2)
    expect(page.get_by_role("link", name=f"Remove filter: Colour {colour_value}")).to_be_visible()
    remove_brand = page.get_by_role("link", name=f"Remove filter: Brand {brand_name}")
    expect(remove_brand).to_be_visible()
    both = results(page)
    assert both < with_colour
    expect(page.locator(f"input[type=checkbox][name=o_colour][value='{colour_value}']")).to_be_checked()
    page.screenshot(path=artifacts / "category-chips-desktop.png", full_page=True)

    remove_brand.click()
    expect(chips).to_have_count(1)
    expect(page.get_by_role("link", name=f"Remove filter: Colour {colour_value}")).to_be_visible()
    expect(page.locator("#results-count")).to_have_text(re.compile(rf"^{with_colour} products?$"))
    assert "sort=price_asc" in page.url, "the sort stays"
    assert "brand=" not in page.url

    page.get_by_role("link", name="Clear all").first.click()
    expect(chips).to_have_count(0)
    assert "sort=price_asc" in page.url


def test_on_a_phone_the_filters_wait_behind_a_button_and_the_first_product_shows(
    live_server, page, artifacts, demo_catalog
):
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/c/clothing/")
    colour = facet_boxes(page, "Colour").first.get_attribute("value")
    size = facet_boxes(page, "Size").first.get_attribute("value")
    page.goto(f"{live_server.url}/c/clothing/?o_colour={colour}&o_size={size}")
    toggle = page.locator("summary.filters-toggle")
    expect(toggle).to_have_text("Filters (2)")
    expect(page.locator("fieldset.facet").first).to_be_hidden()
    expect(page.locator(".active-filters .chip-remove")).to_have_count(2)
    card = page.locator(".product-grid > *").first.bounding_box()
    assert card is not None
    assert card["y"] + 150 < PHONE["height"], f"the first product starts at {card['y']} px, below the first screen"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    page.screenshot(path=artifacts / "category-chips-phone.png")

    toggle.click()
    expect(page.locator("fieldset.facet").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=artifacts / "category-filters-open-phone.png", full_page=True)
    toggle.click()
    expect(page.locator("fieldset.facet").first).to_be_hidden()

    toggle.click()  # open, it works: one more value applies and the panel is closed again on the new page
    facet_boxes(page, "Colour").nth(1).check()
    expect(toggle).to_have_text("Filters (3)")
    expect(page.locator(".active-filters .chip-remove")).to_have_count(3)
    expect(page.locator("fieldset.facet").first).to_be_hidden()


def test_the_category_menu_opens_with_the_keyboard_on_a_phone(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    from catalog.services import category_tree

    roots = [root.name for root in category_tree().roots()]
    assert len(roots) >= 6
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/")
    nav = page.get_by_role("navigation", name="Categories")
    menu = nav.locator("summary", has_text="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    links = nav.locator(".category-menu-list a")
    expect(links.first).to_be_hidden()
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    for name in roots:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    page.screenshot(path=artifacts / "category-menu-phone.png")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == roots[0], "the list follows the button"
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(links.first).to_be_hidden()
    menu.focus()
    page.keyboard.press(" ")
    nav.get_by_role("link", name=roots[-1], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(roots[-1])


def test_at_desktop_width_every_top_category_fits_or_waits_under_more(live_server, page, artifacts, demo_catalog):
    from playwright.sync_api import expect

    from catalog.services import category_tree
    from tests.factories import make_category

    page.goto(live_server.url + "/")
    nav = page.get_by_role("navigation", name="Categories")
    inline = nav.locator(".category-list a")
    for name in (root.name for root in category_tree().roots()):
        expect(inline.filter(has_text=re.compile(rf"^{re.escape(name)}$"))).to_be_visible()
    expect(nav.locator("summary", has_text="More")).to_be_hidden()  # they all fit: no More menu

    for name in ("Books & stationery", "Toys & games", "Beauty & wellbeing", "Pet supplies", "Music & film"):
        make_category(name)
    from django.core.cache import cache

    cache.clear()  # the category tree is cached; a test makes categories behind catalog's back
    roots = [root.name for root in category_tree().roots()]
    page.goto(live_server.url + "/c/clothing/")  # not "/": the browser keeps that page (public, max-age 60)
    more = nav.locator("summary", has_text="More")
    expect(more).to_be_visible()
    bar_right = nav.locator(".category-list").bounding_box()
    shown = [a.inner_text() for a in inline.all() if a.is_visible()]
    for link in (a for a in inline.all() if a.is_visible()):
        box = link.bounding_box()
        assert box["x"] + box["width"] <= bar_right["x"] + bar_right["width"] + 1, "no name is cut off"
    more.click()
    under_more = [a.inner_text() for a in nav.locator(".category-menu-list a").all() if a.is_visible()]
    assert shown + under_more == roots, f"each top category once: on the bar or under More: {shown} {under_more}"
    assert under_more
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=artifacts / "category-more-desktop.png")


def test_an_info_page_opens_from_the_footer(live_server, page, artifacts, demo_catalog):
    from django.apps import apps
    from django.db import connections
    from playwright.sync_api import expect

    from kernel.db import db_for_module

    migration = importlib.import_module("shop.migrations.0003_info_pages")
    migration.create_info_pages(apps, SimpleNamespace(connection=connections[db_for_module("shop")]))
    page.goto(live_server.url + "/")
    footer = page.locator("footer")
    for name in ("Delivery", "Returns", "Terms", "Privacy", "Contact", "Sitemap", "API for integrators"):
        expect(footer.get_by_role("link", name=name)).to_be_visible()
    footer.get_by_role("link", name="Delivery").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivery")
    expect(page.get_by_role("row", name=re.compile("Standard delivery"))).to_contain_text("free on orders from")
    page.screenshot(path=artifacts / "info-page.png", full_page=True)

    page.set_viewport_size(PHONE)
    page.locator("footer").get_by_role("link", name="Returns").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Returns")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=artifacts / "info-page-phone.png", full_page=True)


def test_without_javascript_the_panel_is_a_sidebar_on_desktop_and_a_disclosure_on_a_phone(
    live_server, page, demo_catalog
):
    from playwright.sync_api import expect

    from tests.conftest import DESKTOP

    browser = page.context.browser
    for viewport, sidebar in ((DESKTOP, True), (PHONE, False)):
        plain = browser.new_context(viewport=viewport, java_script_enabled=False).new_page()
        plain.goto(live_server.url + "/c/clothing/")
        facet = plain.locator("fieldset.facet").first
        if sidebar:
            expect(facet).to_be_visible()
            expect(plain.locator("summary.filters-toggle")).to_be_hidden()
        else:
            expect(facet).to_be_hidden()
            plain.locator("summary.filters-toggle").click()
            expect(facet).to_be_visible()
            plain.get_by_role("navigation", name="Categories").locator("summary", has_text="Menu").click()
            expect(
                plain.get_by_role("navigation", name="Categories").get_by_role("link", name="Garden")
            ).to_be_visible()
        plain.context.close()
