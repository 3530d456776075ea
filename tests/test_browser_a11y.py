"""Accessibility of the shop's pages, checked by axe-core in headless Chromium at 1280 and 390 px: no serious or
critical violation of WCAG 2 A/AA or axe's best practices on the pages a shopper goes through, from the home page to
a paid order and the account. The pages are reached by URL and by role, so new markup is checked as it comes.

A failure lists, page by page, each violation (rule, what it asks for, the selectors, the HTML); axe's report for
every page is also written to var/test-artifacts/axe-<pages>-<viewport>.txt, with a screenshot of each page beside
it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.axe import ALL, BLOCKING, Violation, assert_accessible, axe_violations, broken_references
from tests.conftest import DESKTOP, PHONE
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.axe, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


class Audit:
    """Runs axe on each page it is shown and keeps the serious and critical violations, so one test reports every
    page's problems at once instead of stopping at the first page."""

    def __init__(self, page, group: str, viewport: str, artifacts) -> None:
        self.page = page
        self.group = group
        self.viewport = viewport
        self.artifacts = artifacts
        self.found: dict[str, list[Violation]] = {}
        self.advice: dict[str, list[Violation]] = {}  # moderate and minor: in the report file, not failing

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        violations = axe_violations(self.page, impacts=ALL)
        self.found[name] = [v for v in violations if v.impact in BLOCKING] + broken_references(self.page)
        self.advice[name] = [v for v in violations if v.impact not in BLOCKING]
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.page.screenshot(path=self.artifacts / f"a11y-{slug}-{self.viewport}.png", full_page=True)

    def assert_clean(self) -> None:
        lines = []
        for name, violations in self.found.items():
            count = sum(len(v.nodes) for v in violations)
            advice = self.advice.get(name, [])
            minor = sum(len(v.nodes) for v in advice)
            lines.append(f"== {name}: {count} serious or critical, {minor} moderate or minor")
            lines += [v.describe() for v in violations + advice]
        (self.artifacts / f"axe-{self.group}-{self.viewport}.txt").write_text("\n".join(lines) + "\n")
        bad = {name: violations for name, violations in self.found.items() if violations}
        report = "\n".join(f"== {name}\n" + "\n".join(v.describe() for v in vs) for name, vs in bad.items())
        assert not bad, f"axe-core at {self.viewport} width finds problems on {', '.join(bad)}:\n{report}"


def _sign_in(page, base: str, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(base + "/account/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _footer_pages(page, base: str) -> list[str]:
    """The shop's own HTML pages linked from the footer (information pages), not the sitemap or the API docs."""
    hrefs = page.get_by_role("contentinfo").get_by_role("link").evaluate_all("links => links.map(a => a.href)")
    pages = []
    for href in hrefs:
        parts = urlsplit(href)
        if href.startswith(base) and not parts.path.endswith(".xml") and not parts.path.startswith("/api/"):
            pages.append(parts.path)
    return list(dict.fromkeys(pages))


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_catalog_and_account_pages_have_no_serious_accessibility_problems(
    live_server, page, artifacts, demo_catalog, info_pages, viewport
):
    from playwright.sync_api import expect

    from catalog.models import Category, Product

    base = live_server.url
    page.set_viewport_size(VIEWPORTS[viewport])
    audit = Audit(page, "catalog-account", viewport, artifacts)

    page.goto(base + "/")
    audit.check("home")
    footer_pages = _footer_pages(page, base)
    assert len(footer_pages) >= 5, f"the footer links the info pages: {footer_pages}"

    category = Category.objects.filter(parent=None, is_active=True).order_by("position", "name").first()
    page.goto(f"{base}/c/{category.slug}/?in_stock=on&sort=price_asc")
    expect(page.get_by_role("heading", level=1)).to_have_text(category.name)
    audit.check("category, filtered")

    product = Product.objects.filter(in_stock=True, variants__isnull=False).distinct().order_by("id").first()
    page.goto(f"{base}/p/{product.slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(product.title)
    audit.check("product")

    word = product.title.split()[-1]
    page.goto(f"{base}/search/?q={word}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(word)
    audit.check("search results")

    page.get_by_label("Search the shop").fill(word[:4])
    expect(page.locator("#search-suggestions")).to_be_visible()
    audit.check("search suggestions open")

    page.goto(base + "/search/?q=zzqqxxnothing")
    audit.check("search, nothing found")

    page.goto(base + "/account/signup/")
    audit.check("sign-up")
    page.get_by_role("button", name="Create account").click()  # empty: the form comes back with its errors
    expect(page.get_by_text("This field is required.").first).to_be_visible()
    audit.check("sign-up with errors")

    page.goto(base + "/account/login/")
    audit.check("sign-in")

    for path in footer_pages:
        assert page.goto(base + path).status == 200, path
        audit.check(f"information page {path}")

    customer = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    from accounts.services import address_save

    address_save(user_id=customer.pk, full_name="Ada Lovelace", line1="1 Market Street", postal_code="10115",
                 city="Berlin", country="DE")  # fmt: skip
    _sign_in(page, base, customer.email)
    page.goto(base + "/account/")
    audit.check("account profile")
    page.goto(base + "/account/addresses/")
    expect(page.get_by_text("1 Market Street")).to_be_visible()
    audit.check("address book")
    page.goto(base + "/account/addresses/new/")
    audit.check("new address form")
    page.goto(base + "/account/password/change/")
    audit.check("password change")
    page.goto(base + "/orders/")
    audit.check("order history, empty")

    audit.assert_clean()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_cart_checkout_and_order_pages_have_no_serious_accessibility_problems(
    live_server, page, artifacts, demo_catalog, viewport
):
    from playwright.sync_api import expect

    from catalog.models import Product

    base = live_server.url
    page.set_viewport_size(VIEWPORTS[viewport])
    audit = Audit(page, "purchase", viewport, artifacts)

    page.goto(base + "/cart/")
    audit.check("cart, empty")

    customer = UserFactory(email="grace@example.com", full_name="Grace Hopper")
    _sign_in(page, base, customer.email)
    product = Product.objects.filter(in_stock=True, title__icontains="jacket").order_by("id").first()
    page.goto(f"{base}/p/{product.slug}/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("[data-cart-count]")).to_have_text("1")
    audit.check("product, added to cart")

    page.goto(base + "/cart/")
    expect(page.get_by_role("link", name=product.title).first).to_be_visible()
    audit.check("cart with a line")

    page.goto(base + "/checkout/")
    audit.check("checkout details")
    page.get_by_role("button", name="Review your order").click()  # no address yet: errors
    expect(page.locator(".field-errors").first).to_be_visible()
    audit.check("checkout details with errors")
    page.get_by_label("Full name", exact=True).fill("Grace Hopper")
    page.get_by_label("Address", exact=True).fill("1 Market Street")
    page.get_by_label("Postcode", exact=True).fill("10115")
    page.get_by_label("City", exact=True).fill("Berlin")
    page.get_by_role("button", name="Review your order").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    audit.check("checkout review")

    page.get_by_role("button", name=re.compile("Place order")).click()
    expect(page.get_by_label("Card number")).to_be_visible()
    audit.check("test gateway")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Your payment did not go through")).to_be_visible()
    audit.check("payment declined")
    page.get_by_role("button", name="Pay again").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you! Your order is confirmed.")).to_be_visible()
    audit.check("order confirmed")
    number = page.locator("#order-number").inner_text()

    page.goto(base + "/orders/")
    expect(page.get_by_role("link", name=number)).to_be_visible()
    audit.check("order history")
    page.goto(f"{base}/orders/{number}/")
    audit.check("order detail")

    audit.assert_clean()


def test_not_found_and_password_reset_pages_have_no_serious_accessibility_problems(live_server, page):
    from playwright.sync_api import expect

    for viewport in VIEWPORTS.values():
        page.set_viewport_size(viewport)
        page.goto(live_server.url + "/no-such-page/")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, "the 404 page")
        page.goto(live_server.url + "/account/password/reset/")
        expect(page.get_by_role("heading", level=1)).to_be_visible()  # signed out, the form's title is the h1
        assert_accessible(page, "password reset")
