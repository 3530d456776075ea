"""Storefront pages with a catalog: what shoppers see, bad input, SQL budget, caching and its invalidation."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from catalog.services import refresh_products, stock_release, stock_reserve, stock_set
from tests.factories import UserFactory, make_brand, make_category, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    shoes = make_category("Shoes")
    running = make_category("Running", shoes)
    brands = [make_brand(name) for name in ("Kestrel", "Yarrow", "Zephyr")]
    products = []
    for i in range(60):
        products.append(
            make_product(
                f"{brands[i % 3].name} Runner {i:02d}",
                running if i % 2 else shoes,
                brand=brands[i % 3],
                variants=[
                    {"options": {"Colour": ["Black", "White"][i % 2], "EU size": str(40 + i % 4)},
                     "price": f"{50 + i}.00", "stock": i % 5},
                    {"options": {"Colour": "Red", "EU size": "42"}, "price": f"{55 + i}.00", "stock": 1},
                ],
                popularity=i,
            )
        )  # fmt: skip
    return {"shoes": shoes, "running": running, "products": products}


def html(response) -> str:
    return response.content.decode()


def without_token(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


# ---------------------------------------------------------------- pages


def test_home_shows_categories_featured_and_new_arrivals(client, catalog):
    Product.objects.filter(pk=catalog["products"][5].pk).update(is_featured=True)
    page = html(client.get("/"))
    assert "Shop by category" in page
    assert 'href="/c/shoes/"' in page
    assert "Featured" in page
    assert catalog["products"][5].title in page
    assert "New arrivals" in page


def test_category_page_has_breadcrumb_subcategories_facets_and_pagination(client, catalog):
    response = client.get("/c/running/")
    page = html(response)
    assert response.status_code == 200
    assert 'aria-label="Breadcrumb"' in page
    assert 'href="/c/shoes/"' in page
    assert "30 products" in page
    assert 'name="brand" value="kestrel"' in page
    assert 'name="o_colour" value="Red"' in page
    assert 'name="o_eu-size" value="42"' in page
    assert 'rel="next" href="?page=2"' in page
    assert '<link rel="canonical" href="/c/running/">' in page
    assert "Running" in html(client.get("/c/shoes/"))


def test_facet_filter_narrows_the_listing(client, catalog):
    page = html(client.get("/c/shoes/", {"brand": "zephyr", "o_colour": "White", "per_page": "48"}))
    shown = set(re.findall(r"Zephyr Runner \d\d", page)) | set(re.findall(r"Kestrel Runner \d\d", page))
    expected = {p.title for p in catalog["products"] if p.brand_name == "Zephyr" and int(p.title[-2:]) % 2 == 1}
    assert shown == expected
    assert 'value="zephyr" checked' in page
    assert '<meta name="robots" content="noindex, follow">' in page


def test_product_page_has_gallery_variants_breadcrumb_json_ld_and_canonical(client, catalog):
    product = catalog["products"][7]
    response = client.get(f"/p/{product.slug}/")
    page = html(response)
    assert response.status_code == 200
    assert f'<h1 id="product-title">{product.title}</h1>' in page
    assert page.count('name="o_colour"') == 2, "one swatch per colour"
    assert page.count('name="o_eu-size"') == 2, "one button per size"
    assert re.search(r'name="variant" id="variant-id" value="\d+"', page), "the variant the form adds"
    assert "Only 2 left" in page
    assert f'<link rel="canonical" href="http://testserver/p/{product.slug}/">' in page
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    data = json.loads(blocks[0])
    assert data["@type"] == "Product"
    assert data["name"] == product.title
    assert data["brand"]["name"] == product.brand_name
    assert [o["price"] for o in data["offers"]] == ["57.00", "62.00"]
    assert {o["availability"] for o in data["offers"]} == {"https://schema.org/InStock"}
    crumbs = json.loads(blocks[1])["itemListElement"]
    assert crumbs[-1]["name"] == product.title
    assert crumbs[1]["item"] == "http://testserver/c/shoes/", "the shop links the breadcrumb from the category's slug"
    assert f'name="next" value="/p/{product.slug}/"' in page


def test_product_page_variant_choice_without_javascript(client, catalog):
    product = catalog["products"][7]
    red = product.variants.get(options__Colour="Red")
    page = html(client.get(f"/p/{product.slug}/", {"variant": red.pk}))
    assert f'name="variant" id="variant-id" value="{red.pk}"' in page
    assert re.search(r'name="o_colour" value="Red" checked', page)
    assert '<strong id="variant-price">€62.00</strong>' in page

    # "Show this choice" sends the option values; the server answers with the variant they make
    response = client.get(f"/p/{product.slug}/", {"variant": red.pk, "o_colour": "White", "o_eu-size": "42"})
    white = product.variants.get(options__Colour="White")
    assert response.status_code == 302
    assert response["Location"] == f"/p/{product.slug}/?variant={white.pk}", "White comes in one size only: 43"
    assert client.get(f"/p/{product.slug}/", {"o_colour": "Purple"})["Location"] == f"/p/{product.slug}/"


def test_search_page_and_suggestions(client, catalog):
    page = html(client.get("/search/", {"q": "zephyr runner"}))
    assert "Results for “zephyr runner”" in page
    assert "20 products" in page
    suggestions = client.get("/search/suggest", {"q": "Runn"}).json()["suggestions"]
    assert suggestions[0] == {"title": "Running", "url": "/c/running/", "kind": "category"}
    assert any(s["kind"] == "product" and s["url"].startswith("/p/") for s in suggestions)
    assert "Nothing matches" in html(client.get("/search/", {"q": "submarine"}))


def test_sitemap_and_robots(client, catalog):
    index = html(client.get("/sitemap.xml"))
    assert "sitemap-products.xml" in index
    products = html(client.get("/sitemap-products.xml"))
    assert f"/p/{catalog['products'][0].slug}/" in products
    assert "<lastmod>" in products
    assert "/c/running/" in html(client.get("/sitemap-categories.xml"))
    assert "Sitemap: http://testserver/sitemap.xml" in html(client.get("/robots.txt"))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/c/no-such-category/", 404, "We could not find that page"),
        ("/c/shoes/?page=-1", 404, ""),
        ("/c/shoes/?page=abc", 404, ""),
        ("/c/shoes/?page=99999", 404, ""),
        ("/c/shoes/?page=99999999999999999999", 404, ""),
        ("/c/shoes/?price_min=abc", 200, "Min price: Enter a number. This filter was not applied."),
        ("/c/shoes/?price_min=90&price_max=10", 200, "The maximum price is below the minimum price."),
        ("/c/shoes/?sort=bogus", 200, "Select a valid choice"),
        ("/c/shoes/?per_page=1000", 200, "Per page: Select a valid choice"),
        ("/c/shoes/?o_a=1&o_b=2&o_c=3&o_d=4", 200, "Only the first 3 option filters were applied."),
        ("/c/shoes/?o_colour%27%3B--=x&brand=%27%3BDROP", 200, "0 products"),
        ("/search/?q=" + "a" * 2048, 200, "only its first 200 characters were used"),
        ("/search/?q=%27%29%3B+DROP+TABLE+catalog_product%3B--", 200, "Nothing matches"),
        ("/p/no-such-product/", 404, "We could not find that page"),
        ("/p/" + "x" * 300 + "/", 404, ""),
    ],
)
def test_bad_input_is_explained_or_not_found_never_a_server_error(client, catalog, url, status, says):
    response = client.get(url)
    assert response.status_code == status
    assert says in html(response)
    assert Product.objects.count() == 60


def test_unknown_variant_in_the_address_falls_back_to_an_available_one(client, catalog):
    product = catalog["products"][7]
    for value in ("abc", "99999999", "-1", "9" * 40):
        assert client.get(f"/p/{product.slug}/", {"variant": value}).status_code == 200


# ---------------------------------------------------------------- SQL budget


def count_queries(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/c/shoes/", {}),
        ("/c/shoes/", {"brand": "kestrel", "o_colour": "Red", "in_stock": "on", "sort": "price_asc"}),
        ("/search/", {"q": "runner"}),
        ("/search/", {"q": "runner", "o_eu-size": "42", "sort": "relevance"}),
    ],
)
def test_listing_and_search_run_the_same_queries_for_12_and_48_products(client, catalog, url, params):
    client.get(url, params)  # warm the category tree cache
    small = count_queries(client, url, {**params, "per_page": 12})
    large = count_queries(client, url, {**params, "per_page": 48})
    assert small == large
    assert large <= 12


def test_product_page_runs_a_handful_of_queries(client, catalog, module_queries):
    client.get("/")
    url = f"/p/{catalog['products'][3].slug}/"
    module_queries.statements.clear()
    count_queries(client, url, {})
    first = dict(module_queries.statements)
    assert first.get("catalog", 0) <= 4  # the product, variants, pictures (and a recommendation slot's cards)
    assert first.get("recommendations", 0) <= 3  # the slot's ids, on a cold cache: related, best sellers x 2
    assert first.get("accounts", 0) <= 2  # the session that remembers the view (recently viewed)
    module_queries.statements.clear()
    count_queries(client, url, {})
    assert module_queries.statements.get("recommendations", 0) == 0, "the slot's ids come from the cache"
    assert module_queries.statements.get("catalog", 0) <= 4


# ---------------------------------------------------------------- caching


def test_anonymous_catalog_pages_are_publicly_cacheable_and_personal_ones_are_not(client, catalog):
    anonymous = client.get("/c/shoes/")
    assert "public" in anonymous["Cache-Control"]
    assert "max-age=60" in anonymous["Cache-Control"]
    explained = client.get("/c/shoes/", {"price_min": "abc"})
    assert "private" in explained["Cache-Control"]
    client.force_login(UserFactory())
    signed_in = client.get("/c/shoes/")
    assert "private" in signed_in["Cache-Control"]
    assert "public" not in signed_in["Cache-Control"]


def _price_change_is_seen_on_the_next_request(client, catalog, capture):
    product = catalog["products"][7]
    url = f"/p/{product.slug}/"
    first = html(client.get(url))
    assert "€57.00" in first
    client.get("/c/running/", {"sort": "price_asc"})
    with CaptureQueriesContext(connection) as ctx:
        assert without_token(html(client.get(url))) == without_token(first)
    assert len(ctx.captured_queries) == 0, "served from the cache"

    variant = product.variants.get(options__Colour="White")
    with capture(execute=True):
        type(variant).objects.filter(pk=variant.pk).update(price="47.00")
        refresh_products(product_ids=[product.pk])
    assert "€47.00" in html(client.get(url)), "the price change shows on the very next request"
    listing = html(client.get("/c/running/", {"sort": "price_asc"}))
    assert listing.index(product.title) < listing.index(catalog["products"][1].title)

    with capture(execute=True):
        stock_set(sku=variant.sku, on_hand=0)
    assert "Out of stock" in html(client.get(url)), "and so does a stock change"


def test_cached_pages_are_invalidated_by_catalog_events(client, catalog, settings, django_capture_on_commit_callbacks):
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    _price_change_is_seen_on_the_next_request(client, catalog, django_capture_on_commit_callbacks)


@pytest.mark.redis
def test_cached_pages_are_invalidated_by_catalog_events_with_redis(
    client, catalog, settings, django_capture_on_commit_callbacks
):
    settings.CACHES = {
        "default": {
            "BACKEND": "kernel.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        }
    }
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    _price_change_is_seen_on_the_next_request(client, catalog, django_capture_on_commit_callbacks)


def test_product_page_stays_cached_while_what_it_says_about_stock_is_unchanged(
    client, catalog, settings, django_capture_on_commit_callbacks
):
    """Selling one of many changes nothing on the page, so the cached page stands; "Only 5 left" shows at once."""
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    product = catalog["products"][7]
    variant = product.variants.get(options__Colour="White")
    url = f"/p/{product.slug}/?variant={variant.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        stock_set(sku=variant.sku, on_hand=8)
    assert 'id="variant-stock" class="stock ok" aria-live="polite">In stock<' in html(client.get(url))

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(key="order:a", lines=[(variant.pk, 1)])  # 7 left: still "In stock"
    with CaptureQueriesContext(connection) as ctx:
        assert ">In stock<" in html(client.get(url))
    assert len(ctx.captured_queries) == 0, "still served from the cache"

    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(key="order:b", lines=[(variant.pk, 2)])  # 5 left
    assert ">Only 5 left<" in html(client.get(url))
    with django_capture_on_commit_callbacks(execute=True):
        stock_release(key="order:b")
    page = html(client.get(url))
    assert ">In stock<" in page
    assert "Only 5 left" not in page


def test_pages_still_render_when_the_cache_is_down(client, catalog, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "kernel.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    for url in ("/", "/c/shoes/", f"/p/{catalog['products'][3].slug}/", "/search/?q=runner"):
        assert client.get(url).status_code == 200, url


def test_another_sort_or_page_reuses_the_cached_facet_counts(client, catalog, settings):
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    client.get("/c/shoes/", {"per_page": 12})
    miss_with_facets_cached = count_queries(client, "/c/shoes/", {"per_page": 12, "page": 2, "sort": "newest"})
    assert miss_with_facets_cached == 1, "only the page of products is read; the counts come from the cache"
