"""The storefront shell, error pages for people and JSON errors for API clients."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from config import views

pytestmark = pytest.mark.django_db


def test_home_page_renders_as_the_shop(client, settings):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Welcome to {settings.SHOP_NAME}" in html
    assert 'href="#main"' in html, "skip link for keyboard users"
    assert "/static/css/shop.css" in html
    assert "cdn" not in html.lower(), "nothing is loaded from a CDN"


def test_home_page_refuses_posts_cleanly(client):
    assert client.post("/").status_code == 405


def test_unknown_page_gets_the_shops_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()
    assert "/static/css/shop.css" in response.content.decode()


def test_unknown_api_address_gets_a_json_404(client):
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_server_error_page_for_people_and_for_api_clients():
    page = views.server_error(RequestFactory().get("/somewhere"))
    assert page.status_code == 500
    assert b"Something went wrong on our side" in page.content
    api = views.server_error(RequestFactory().get("/api/v1/orders/"))
    assert api.status_code == 500
    assert b'"code": "server_error"' in api.content


def test_openapi_schema_is_public_and_versioned(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["version"] == "1.0.0 (v1)"


def test_api_docs_are_served_without_a_cdn(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert "cdn.jsdelivr" not in response.content.decode()


def test_robots_txt_keeps_crawlers_out_of_admin_and_api(client):
    body = client.get("/robots.txt").content.decode()
    assert "Disallow: /admin/" in body
    assert "Disallow: /api/" in body


def _category_bar(html: str) -> str:
    return html.split('aria-label="Categories"', 1)[1].split("</nav>", 1)[0]


def test_the_frame_every_page_shares_follows_the_categories_the_shop_name_and_the_year(client, settings):
    """The header's category bar and the footer are rendered once per process (shop.chrome), not per request:
    a new, renamed or hidden category, another shop name or a new year still shows on the very next page."""
    from catalog.services import category_create, category_update

    settings.DEBUG = False  # the shared parts are kept only with DEBUG off
    garden = category_create(name="Garden")
    html = client.get("/").content.decode()
    assert 'href="/c/garden/">Garden</a>' in _category_bar(html)
    assert 'href="/pages/delivery/">Delivery</a>' in html
    assert 'href="/pages/contact/">Contact</a>' in html
    assert client.get("/cart/").content.decode().count('href="/c/garden/"') == 2, "on the bar and in its menu"

    category_update(category_id=garden.id, name="Garden & Patio")
    assert 'href="/c/garden/">Garden &amp; Patio</a>' in _category_bar(client.get("/").content.decode())
    category_create(name="Books")
    assert 'href="/c/books/">Books</a>' in _category_bar(client.get("/").content.decode())
    category_update(category_id=garden.id, is_active=False)
    assert "/c/garden/" not in client.get("/").content.decode()

    settings.SHOP_NAME = "Corner Shop"
    assert "Corner Shop</p>" in client.get("/").content.decode()


def test_the_frame_shows_the_year_it_is(client, settings, monkeypatch):
    import datetime

    from django.utils import timezone

    settings.DEBUG = False
    client.get("/")
    real = timezone.localdate
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: real(*a, **k).replace(year=2031))
    assert f"&copy; 2031 {settings.SHOP_NAME}" in client.get("/").content.decode()
    assert datetime.date.today().year != 2031


def test_a_cards_link_is_the_product_pages_address_under_any_script_prefix():
    from django.urls import reverse, set_script_prefix

    from shop.templatetags.shop_tags import product_url

    assert product_url("oak-table-3") == reverse("shop:product", args=["oak-table-3"]) == "/p/oak-table-3/"
    try:
        set_script_prefix("/shop/")
        assert product_url("oak-table-3") == "/shop/p/oak-table-3/" == reverse("shop:product", args=["oak-table-3"])
    finally:
        set_script_prefix("/")
    assert product_url("lamp") == "/p/lamp/"


def test_a_product_card_escapes_every_field_and_says_price_sale_and_stock():
    from decimal import Decimal

    from django.template import engines

    from catalog.data import ProductCard

    card = ProductCard(
        7, 'Tee <script>alert(1)</script> & "co"', "tee-7", "<b>Brand</b>", Decimal("19.90"), Decimal("24.00"),
        Decimal("29.90"), "EUR", False, '/media/x.jpg"><script>', 'a "b"', 42,
    )  # fmt: skip
    listing = engines["django"].from_string("{% product_card card %}").render({"card": card})
    assert "<script>" not in listing
    assert "Tee &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in listing
    assert 'href="/p/tee-7/"' in listing
    assert '<span class="from">from</span> <strong>€19.90</strong>' in listing, "prices differ between variants"
    assert '<span class="visually-hidden">was </span>€29.90</s>' in listing
    assert '<p class="card-stock out">Out of stock</p>' in listing
    assert "<form" not in listing
    slot = (
        engines["django"]
        .from_string("{% product_card card recs=True one_click=True %}")
        .render({"card": card, "csrf_token": "t0ken", "next_url": "/cart/"})
    )
    assert 'data-product-id="7"' in slot
    assert '<input type="hidden" name="csrfmiddlewaretoken" value="t0ken">' in slot
    assert '<input type="hidden" name="variant" value="42">' in slot
    assert '<input type="hidden" name="next" value="/cart/">' in slot
    assert "card-stock" not in slot, "a slot's card says nothing of stock (it only shows products in stock)"
