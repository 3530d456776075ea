"""Catalog's REST endpoints: categories, products with their variants, variants, stock (one and in bulk).

Every endpoint and method: a key lacking its scope gets 403 naming it, a revoked key 401, the right scope works.
Writes go through catalog's services and show in the storefront's reads (product_detail, product_listing,
category_tree) and in the events the admin's saves publish; read-only and unknown fields change nothing.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Category, Product, StockItem, Variant
from catalog.services import (
    ListingQuery,
    ProductNotFound,
    category_tree,
    product_detail,
    product_listing,
    refresh_products,
    stock_reserve,
    stock_set,
)
from tests import outbox
from tests.api import client_with, error_code, key_client, make_key, other_scopes, revoked_client
from tests.factories import make_brand, make_category, make_product

pytestmark = pytest.mark.django_db

READ, WRITE, INVENTORY = "catalog:read", "catalog:write", "inventory:write"


@pytest.fixture
def shop():
    """Shoes (under Clothing), a brand, a trail shoe in two sizes and a hidden product."""
    clothing = make_category("Clothing")
    shoes = make_category("Shoes", clothing)
    kestrel = make_brand("Kestrel")
    trail = make_product(
        "Kestrel Trail Shoe",
        shoes,
        brand=kestrel,
        variants=[
            {"options": {"EU size": "42"}, "price": "80.00", "stock": 3, "sku": "KTS-42"},
            {"options": {"EU size": "43"}, "price": "85.00", "stock": 0, "sku": "KTS-43"},
        ],
    )
    hidden = make_product("Kestrel Old Shoe", shoes, brand=kestrel, is_active=False, variants=[
        {"price": "50.00", "stock": 1, "sku": "KOS-1"},
    ])  # fmt: skip
    return {"clothing": clothing, "shoes": shoes, "kestrel": kestrel, "trail": trail, "hidden": hidden}


def new_product_body(category_id: int, **fields) -> dict:
    return {
        "title": "Yarrow Rain Jacket",
        "category": category_id,
        "brand": None,
        "description": "Keeps the rain out.",
        "attributes": {"Material": "Nylon"},
        "variants": [
            {"sku": "YRJ-S", "price": "120.00", "compare_at_price": "150.00", "options": {"Size": "S"}},
            {"sku": "YRJ-M", "price": "125.5", "options": {"Size": "M"}},
        ],
        **fields,
    }


def levels(*skus: str) -> dict[str, tuple[int, int]]:
    return {s.variant.sku: (s.on_hand, s.reserved) for s in StockItem.objects.select_related("variant")
            .filter(variant__sku__in=skus)}  # fmt: skip


# ---------------------------------------------------------------- scopes, for every endpoint and method

ENDPOINTS = [
    ("get", "/api/v1/categories/", None, READ, 200),
    ("post", "/api/v1/categories/", {"name": "Boots"}, WRITE, 201),
    ("get", "/api/v1/categories/{shoes}/", None, READ, 200),
    ("patch", "/api/v1/categories/{shoes}/", {"name": "Footwear"}, WRITE, 200),
    ("get", "/api/v1/products/", None, READ, 200),
    ("post", "/api/v1/products/", "new product", WRITE, 201),
    ("get", "/api/v1/products/{trail}/", None, READ, 200),
    ("patch", "/api/v1/products/{trail}/", {"title": "Kestrel Trail Shoe II"}, WRITE, 200),
    ("get", "/api/v1/products/{trail}/variants/", None, READ, 200),
    ("post", "/api/v1/products/{trail}/variants/", {"sku": "KTS-44", "price": "85.00"}, WRITE, 201),
    ("get", "/api/v1/variants/", None, READ, 200),
    ("get", "/api/v1/variants/KTS-42/", None, READ, 200),
    ("patch", "/api/v1/variants/KTS-42/", {"price": "79.00"}, WRITE, 200),
    ("get", "/api/v1/stock/", None, READ, 200),
    ("get", "/api/v1/stock/KTS-42/", None, READ, 200),
    ("put", "/api/v1/stock/KTS-42/", {"on_hand": 7}, INVENTORY, 200),
    ("post", "/api/v1/stock/bulk/", {"items": [{"sku": "KTS-42", "on_hand": 7}]}, INVENTORY, 200),
]


def call(client, method: str, path: str, body, shop):
    path = path.format(shoes=shop["shoes"].pk, trail=shop["trail"].pk)
    if body == "new product":
        body = new_product_body(shop["shoes"].pk)
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


@pytest.mark.parametrize(("method", "path", "body", "scope", "ok"), ENDPOINTS, ids=lambda v: str(v)[:40])
def test_every_endpoint_needs_its_scope_refuses_a_revoked_key_and_works_with_the_scope(
    shop, method, path, body, scope, ok
):
    lacking = call(key_client(*other_scopes(scope)), method, path, body, shop)
    assert lacking.status_code == 403
    assert error_code(lacking) == "missing_scope"
    assert scope in lacking.json()["error"]["message"]
    assert call(revoked_client(scope), method, path, body, shop).status_code == 401
    assert call(key_client(scope), method, path, body, shop).status_code == ok


def test_write_scopes_include_reading_and_only_inventory_write_sets_stock(shop):
    assert key_client(INVENTORY).get("/api/v1/stock/KTS-42/").status_code == 200
    assert key_client(INVENTORY).get("/api/v1/products/").status_code == 200
    assert key_client(WRITE).get("/api/v1/stock/").status_code == 200
    refused = key_client(WRITE).put("/api/v1/stock/KTS-42/", {"on_hand": 9}, format="json")
    assert refused.status_code == 403
    assert "inventory:write" in refused.json()["error"]["message"]
    assert key_client(INVENTORY).patch("/api/v1/variants/KTS-42/", {"price": "1.00"}, format="json").status_code == 403
    assert levels("KTS-42") == {"KTS-42": (3, 0)}
    assert Variant.objects.get(sku="KTS-42").price == Decimal("80.00")


def test_methods_that_are_not_offered_get_405(shop):
    client = key_client(WRITE, INVENTORY)
    assert client.delete(f"/api/v1/products/{shop['trail'].pk}/").status_code == 405
    assert client.put(f"/api/v1/products/{shop['trail'].pk}/", {}, format="json").status_code == 405
    assert client.post("/api/v1/stock/KTS-42/", {"on_hand": 1}, format="json").status_code == 405
    assert client.get("/api/v1/stock/bulk/").status_code == 405


# ---------------------------------------------------------------- categories


def test_categories_list_filters_and_detail(shop):
    boots = make_category("Boots", shop["shoes"], is_active=False)
    client = key_client(READ)
    body = client.get("/api/v1/categories/").json()
    assert {c["slug"] for c in body["results"]} == {"clothing", "shoes", "boots"}
    assert set(body["results"][0]) == {"id", "name", "slug", "parent", "description", "position", "is_active",
                                       "updated_at"}  # fmt: skip

    def slugs(**params) -> list[str]:
        return sorted(c["slug"] for c in client.get("/api/v1/categories/", params).json()["results"])

    assert slugs(parent=shop["shoes"].pk) == ["boots"]
    assert slugs(is_root="true") == ["clothing"]
    assert slugs(is_active="false") == ["boots"]
    later = timezone.now()
    Category.objects.filter(pk=shop["clothing"].pk).get().save()
    assert slugs(updated_since=later.isoformat()) == ["clothing"]
    assert [c["slug"] for c in client.get("/api/v1/categories/", {"ordering": "name"}).json()["results"]] == [
        "boots", "clothing", "shoes"
    ]  # fmt: skip
    detail = client.get(f"/api/v1/categories/{boots.pk}/").json()
    assert (detail["name"], detail["parent"], detail["is_active"]) == ("Boots", shop["shoes"].pk, False)
    assert client.get("/api/v1/categories/999999/").status_code == 404
    assert client.get("/api/v1/categories/", {"parent": "shoes"}).status_code == 400


def test_a_category_created_and_changed_through_the_api_is_in_the_shops_tree(shop):
    client = key_client(WRITE)
    response = client.post("/api/v1/categories/", {"name": "Trail Running", "parent": shop["shoes"].pk}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["slug"] == "trail-running"
    assert response["Location"] == f"/api/v1/categories/{created['id']}/"
    tree = category_tree()
    assert tree.get(slug="trail-running").parent_id == shop["shoes"].pk
    assert outbox.events("catalog.categories.changed.v1")[-1]["payload"]["category_id"] == created["id"]

    changed = client.patch(f"/api/v1/categories/{created['id']}/", {"name": "Trail", "is_active": False}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["slug"], changed.json()["is_active"]) == (
        "Trail", "trail-running", False
    )  # fmt: skip
    assert "trail-running" not in {c.slug for c in category_tree().categories}, "hidden from the shop at once"
    moved = client.patch(f"/api/v1/categories/{created['id']}/", {"parent": None}, format="json")
    assert moved.json()["parent"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Shoes"}, "slug"),  # the slug made from the name is taken
        ({"name": "Other", "slug": "clothing"}, "slug"),
        ({"name": "Other", "slug": "not a slug"}, "slug"),
        ({"name": "Other", "parent": 999999}, "parent"),
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "Other", "position": -1}, "position"),
        ({}, "name"),
    ],
)
def test_bad_categories_get_400_naming_the_field(shop, body, field):
    response = key_client(WRITE).post("/api/v1/categories/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert Category.objects.count() == 2


def test_read_only_and_unknown_fields_of_a_category_cannot_be_set(shop):
    client = key_client(WRITE)
    forged = {"id": 4242, "updated_at": "2000-01-01T00:00:00Z", "children": [1], "depth": 3}
    created = client.post("/api/v1/categories/", {"name": "Boots", **forged}, format="json")
    assert created.status_code == 201
    assert created.json()["id"] != 4242
    assert not created.json()["updated_at"].startswith("2000")
    shoes = shop["shoes"]
    changed = client.patch(f"/api/v1/categories/{shoes.pk}/", {"description": "All shoes.", **forged}, format="json")
    assert changed.status_code == 200
    row = Category.objects.get(pk=shoes.pk)
    assert (row.description, row.parent_id) == ("All shoes.", shop["clothing"].pk)
    assert row.updated_at.year > 2000
    assert not Category.objects.filter(pk=4242).exists()


def test_a_category_cannot_be_moved_under_itself_or_its_subcategories(shop):
    client = key_client(WRITE)
    clothing, shoes = shop["clothing"], shop["shoes"]
    for parent in (clothing.pk, shoes.pk):
        response = client.patch(f"/api/v1/categories/{clothing.pk}/", {"parent": parent}, format="json")
        assert response.status_code == 400
        assert "parent" in response.json()["error"]["fields"]
    response = client.patch(f"/api/v1/categories/{shoes.pk}/", {"slug": "clothing"}, format="json")
    assert response.status_code == 400
    assert "exists already" in response.json()["error"]["fields"]["slug"][0]
    assert client.patch("/api/v1/categories/999999/", {"name": "X"}, format="json").status_code == 404
    clothing.refresh_from_db()
    assert clothing.parent_id is None


# ---------------------------------------------------------------- products: reads


def test_a_product_reads_with_its_variants_images_and_money_as_strings(shop):
    body = key_client(READ).get(f"/api/v1/products/{shop['trail'].pk}/").json()
    assert body["title"] == "Kestrel Trail Shoe"
    assert (body["category"], body["category_slug"], body["brand"], body["brand_name"]) == (
        shop["shoes"].pk, "shoes", "kestrel", "Kestrel"
    )  # fmt: skip
    assert (body["min_price"], body["max_price"], body["currency"], body["in_stock"]) == ("80.00", "85.00", "EUR", True)
    assert [(v["sku"], v["price"], v["available"], v["in_stock"], v["options"]) for v in body["variants"]] == [
        ("KTS-42", "80.00", 3, True, {"EU size": "42"}),
        ("KTS-43", "85.00", 0, False, {"EU size": "43"}),
    ]
    assert body["images"] == []
    assert key_client(READ).get("/api/v1/products/999999/").status_code == 404


def test_products_list_filters(shop):
    other = make_category("Socks")
    socks = make_product("Wool Socks", other, variants=[{"price": "9.00", "stock": 0, "sku": "WS-1"}])
    client = key_client(READ)

    def titles(**params) -> set[str]:
        response = client.get("/api/v1/products/", params)
        assert response.status_code == 200, response.json()
        return {p["title"] for p in response.json()["results"]}

    everything = {"Kestrel Trail Shoe", "Kestrel Old Shoe", "Wool Socks"}
    assert titles() == everything
    assert titles(category=shop["shoes"].pk) == {"Kestrel Trail Shoe", "Kestrel Old Shoe"}
    assert titles(category="socks") == {"Wool Socks"}
    assert titles(brand="kestrel") == {"Kestrel Trail Shoe", "Kestrel Old Shoe"}
    assert titles(is_active="false") == {"Kestrel Old Shoe"}
    assert titles(in_stock="false") == {"Wool Socks"}
    assert titles(sku="KTS-43") == {"Kestrel Trail Shoe"}
    assert titles(sku="KTS-43,WS-1,KTS-42") == {"Kestrel Trail Shoe", "Wool Socks"}
    Product.objects.filter(pk=socks.pk).update(created_at=timezone.now() - timedelta(days=10))
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    assert titles(created_after=week_ago) == {"Kestrel Trail Shoe", "Kestrel Old Shoe"}
    assert titles(created_before=week_ago) == {"Wool Socks"}
    in_order = [p["title"] for p in client.get("/api/v1/products/", {"ordering": "title"}).json()["results"]]
    assert in_order == ["Kestrel Old Shoe", "Kestrel Trail Shoe", "Wool Socks"]
    by_id = [p["id"] for p in client.get("/api/v1/products/", {"ordering": "-id"}).json()["results"]]
    assert by_id == sorted(by_id, reverse=True)
    for bad in ({"updated_since": "yesterday"}, {"created_after": "soon"}, {"in_stock": "maybe"}):
        response = client.get("/api/v1/products/", bad)
        assert response.status_code == 400
        assert set(bad) <= set(response.json()["error"]["fields"])


def test_products_list_pages_by_cursor_through_ties(shop):
    for i in range(7):
        make_product(f"Tee {i}", shop["shoes"])
    refresh_products(product_ids=Product.objects.values_list("pk", flat=True))  # one updated_at for all of them
    client = key_client(READ)
    body = client.get("/api/v1/products/", {"page_size": 2}).json()
    seen = [p["id"] for p in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [p["id"] for p in body["results"]]
    assert sorted(seen) == sorted(Product.objects.values_list("pk", flat=True))


def test_a_list_of_100_products_runs_the_same_queries_as_a_list_of_3(shop):
    client = key_client(READ)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/v1/products/", {"page_size": 100})
            assert response.status_code == 200
        return len(ctx)

    make_product("Third", shop["shoes"], variants=[{"price": "1.00"}, {"price": "2.00"}])
    count()  # the key's first use writes its "last used"
    few = count()
    brand = make_brand("Yarrow")
    for i in range(97):
        make_product(f"Product {i}", make_category(f"Category {i}"), brand=brand,
                     variants=[{"price": "3.00", "stock": i % 2}, {"price": "4.00"}])  # fmt: skip
    assert Product.objects.count() == 100
    assert count() == few
    for path in ("/api/v1/variants/", "/api/v1/stock/", "/api/v1/categories/"):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path, {"page_size": 100}).status_code == 200
        assert len(ctx) <= few, path


def test_a_product_detail_has_an_etag_and_answers_304_until_it_changes(shop):
    client = key_client(WRITE)
    url = f"/api/v1/products/{shop['trail'].pk}/"
    etag = client.get(url)["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    client.patch("/api/v1/variants/KTS-42/", {"price": "75.00"}, format="json")
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    assert again.json()["min_price"] == "75.00"


def test_updated_since_finds_a_product_after_its_price_or_a_stock_take_and_the_stock_list_after_a_hold(shop):
    client = key_client(WRITE, INVENTORY)

    def changed_since(moment) -> set[str]:
        response = client.get("/api/v1/products/", {"updated_since": moment.isoformat()})
        return {p["slug"] for p in response.json()["results"]}

    start = timezone.now()
    assert changed_since(start) == set()
    assert client.patch("/api/v1/variants/KTS-43/", {"price": "90.00"}, format="json").status_code == 200
    assert changed_since(start) == {"kestrel-trail-shoe"}, "a price change (not the lowest price, either)"

    after_price = timezone.now()
    assert client.put("/api/v1/stock/KOS-1/", {"on_hand": 4}, format="json").status_code == 200
    assert changed_since(after_price) == {"kestrel-old-shoe"}, "a stock-take"

    after_stock = timezone.now()
    stock_reserve(key="order-1", lines=[(Variant.objects.get(sku="KTS-42").pk, 1)])
    # a hold does not touch the product row (every buyer of a busy product would queue on it): the stock list has it
    assert changed_since(after_stock) == set()
    assert client.get(f"/api/v1/products/{shop['trail'].pk}/").json()["variants"][0]["available"] == 2

    after_reserve = timezone.now()
    stock = client.get("/api/v1/stock/", {"updated_since": after_stock.isoformat()}).json()["results"]
    assert [(s["sku"], s["on_hand"], s["reserved"], s["available"]) for s in stock] == [("KTS-42", 3, 1, 2)]
    assert client.get("/api/v1/stock/", {"updated_since": after_reserve.isoformat()}).json()["results"] == []


# ---------------------------------------------------------------- products: writes


def test_a_product_created_through_the_api_is_on_sale_in_the_shop(shop):
    client = key_client(WRITE)
    response = client.post("/api/v1/products/", new_product_body(shop["shoes"].pk, brand="kestrel"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"/api/v1/products/{body['id']}/"
    assert (body["slug"], body["min_price"], body["max_price"], body["compare_at_price"]) == (
        "yarrow-rain-jacket", "120.00", "125.50", "150.00"
    )  # fmt: skip
    assert [(v["sku"], v["price"], v["available"], v["position"]) for v in body["variants"]] == [
        ("YRJ-S", "120.00", 0, 0), ("YRJ-M", "125.50", 0, 1)
    ]  # fmt: skip

    detail = product_detail(slug="yarrow-rain-jacket")
    assert (detail.title, detail.brand, detail.price_min, detail.in_stock) == (
        "Yarrow Rain Jacket", "Kestrel", Decimal("120.00"), False
    )  # fmt: skip
    assert detail.attributes == (("Material", "Nylon"),)
    assert {v.sku for v in detail.variants} == {"YRJ-S", "YRJ-M"}
    listing = product_listing(query=ListingQuery(), category_id=shop["shoes"].pk)
    assert "Yarrow Rain Jacket" in [card.title for card in listing.items]
    event = outbox.events("catalog.product.changed.v1")[-1]["payload"]
    assert (event["product_id"], event["listing_changed"]) == (body["id"], True)


def test_a_product_create_is_all_or_nothing(shop):
    client = key_client(WRITE)
    body = new_product_body(shop["shoes"].pk)
    body["variants"].append({"sku": "KTS-42", "price": "1.00"})  # taken by the trail shoe
    body["variants"].append({"sku": "YRJ-S", "price": "1.00"})  # given twice
    response = client.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields["variants"]) == {"2", "3"}
    assert "exists already" in fields["variants"]["2"]["sku"][0]
    assert "twice" in fields["variants"]["3"]["sku"][0]
    assert not Product.objects.filter(title="Yarrow Rain Jacket").exists()
    assert not Variant.objects.filter(sku__startswith="YRJ").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "kestrel-trail-shoe"}, "slug"),
        ({"title": "Kestrel Trail Shoe", "slug": None}, "slug"),  # made from the title, which is taken
        ({"slug": "Not A Slug!"}, "slug"),
        ({"category": 999999}, "category"),
        ({"category": "shoes"}, "category"),
        ({"brand": "nobody"}, "brand"),
        ({"title": ""}, "title"),
        ({"attributes": ["a"]}, "attributes"),
        ({"popularity": -1}, "popularity"),
        ({"published_at": "last week"}, "published_at"),
        ({"variants": "many"}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "-1.00"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "abc"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "1.001"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "12345678901.00"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "10.00", "compare_at_price": "9.00"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "10.00", "currency": "USD"}]}, "variants"),
        ({"variants": [{"sku": "N 1/2", "price": "10.00"}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "10.00", "options": {"Size": ["S"]}}]}, "variants"),
        ({"variants": [{"sku": "N-1", "price": "10.00", "options": {"x" * 61: "S"}}]}, "variants"),
        ({"variants": [{"price": "10.00"}]}, "variants"),
        ({"variants": [{"sku": f"N-{i}", "price": "1.00"} for i in range(101)]}, "variants"),
    ],
)
def test_bad_products_get_400_naming_the_field_and_create_nothing(shop, change, field):
    body = {k: v for k, v in {**new_product_body(shop["shoes"].pk), **change}.items() if v is not None}
    response = key_client(WRITE).post("/api/v1/products/", body, format="json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["fields"], response.json()
    assert Product.objects.count() == 2
    assert Variant.objects.count() == 3


def test_a_product_create_with_an_idempotency_key_runs_once_and_replays(shop):
    client = key_client(WRITE)
    body = new_product_body(shop["shoes"].pk)
    first = client.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-jacket")
    again = client.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-jacket")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert Product.objects.filter(title="Yarrow Rain Jacket").count() == 1
    other = client.post(
        "/api/v1/products/", {**body, "title": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="create-jacket"
    )
    assert other.status_code == 422


def test_a_product_changed_through_the_api_changes_in_the_shop(
    shop, settings, client, django_capture_on_commit_callbacks
):
    settings.SHOP_PAGE_CACHE_SECONDS = 300  # the product page is cached: the change must still show at once
    trail = shop["trail"]
    assert "€80.00" in client.get(f"/p/{trail.slug}/").content.decode()
    api = key_client(WRITE)
    change = {
        "title": "Kestrel Trail Shoe II",
        "description": "Lighter.",
        "is_featured": True,
        "variants": [{"sku": "KTS-42", "price": "70.00", "compare_at_price": "80.00"},
                     {"sku": "KTS-43", "options": {"EU size": "43.5"}, "is_active": False}],
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/v1/products/{trail.pk}/", change, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["title"], body["slug"], body["min_price"], body["compare_at_price"], body["is_featured"]) == (
        "Kestrel Trail Shoe II", "kestrel-trail-shoe", "70.00", "80.00", True
    )  # fmt: skip
    assert [(v["sku"], v["is_active"], v["options"]) for v in body["variants"]] == [
        ("KTS-42", True, {"EU size": "42"}), ("KTS-43", False, {"EU size": "43.5"})
    ]  # fmt: skip
    page = client.get(f"/p/{trail.slug}/").content.decode()
    assert "Kestrel Trail Shoe II" in page
    assert "€70.00" in page
    detail = product_detail(slug=trail.slug)
    assert [v.sku for v in detail.variants] == ["KTS-42"], "the inactive variant is not sold"
    assert outbox.events("catalog.product.changed.v1")[-1]["payload"]["listing_changed"] is True

    with django_capture_on_commit_callbacks(execute=True):
        renamed = api.patch(f"/api/v1/products/{trail.pk}/", {"slug": "kestrel-trail-2"}, format="json")
    assert renamed.json()["slug"] == "kestrel-trail-2"
    with pytest.raises(ProductNotFound):
        product_detail(slug="kestrel-trail-shoe")
    assert client.get("/p/kestrel-trail-shoe/").status_code == 404, "the old page is not served from the cache"
    assert client.get("/p/kestrel-trail-2/").status_code == 200


def test_a_product_patch_is_all_or_nothing(shop):
    trail = shop["trail"]
    change = {
        "title": "Renamed",
        "variants": [
            {"sku": "KTS-42", "price": "1.00"},
            {"sku": "KOS-1", "price": "2.00"},
            {"sku": "KTS-43", "price": "9.00", "compare_at_price": "8.00"},
        ],
    }
    response = key_client(WRITE).patch(f"/api/v1/products/{trail.pk}/", change, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]["variants"]
    assert "no variant with the SKU 'KOS-1'" in fields["1"]["sku"][0], "another product's SKU"
    assert "compare_at_price" in fields["2"]
    trail.refresh_from_db()
    assert trail.title == "Kestrel Trail Shoe"
    assert Variant.objects.get(sku="KTS-42").price == Decimal("80.00")
    assert key_client(WRITE).patch("/api/v1/products/999999/", {"title": "x"}, format="json").status_code == 404


def test_read_only_and_unknown_fields_of_a_product_cannot_be_set(shop):
    client = key_client(WRITE)
    forged = {
        "id": 424242,
        "min_price": "0.01",
        "max_price": "0.02",
        "in_stock": True,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "brand_name": "Forged",
        "currency": "USD",
        "category_slug": "clothing",
        "reserved": 5,
        "is_staff": True,
        "search_vector": "x",
    }
    created = client.post("/api/v1/products/", {**new_product_body(shop["shoes"].pk), **forged}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["id"] != 424242
    assert (body["min_price"], body["in_stock"], body["brand_name"], body["currency"]) == ("120.00", False, "", "EUR")
    assert not body["created_at"].startswith("2000")
    assert not body["updated_at"].startswith("2000")

    trail = shop["trail"]
    before = Product.objects.values().get(pk=trail.pk)
    variant = {"sku": "KTS-43", "id": 1, "product": shop["hidden"].pk, "available": 99, "in_stock": True,
               "updated_at": "2000-01-01T00:00:00Z", "currency": "USD", "on_hand": 50, "reserved": 1}  # fmt: skip
    response = client.patch(f"/api/v1/products/{trail.pk}/", {**forged, "variants": [variant]}, format="json")
    assert response.status_code == 200
    after = Product.objects.values().get(pk=trail.pk)
    for field in ("id", "min_price", "max_price", "in_stock", "created_at", "brand_name", "currency", "category_id"):
        assert after[field] == before[field], field
    assert after["updated_at"] > before["updated_at"]
    row = Variant.objects.get(sku="KTS-43")
    assert (row.product_id, row.currency) == (trail.pk, "EUR")
    assert levels("KTS-43") == {"KTS-43": (0, 0)}


# ---------------------------------------------------------------- variants


def test_variants_of_a_product_are_listed_and_added(shop):
    client = key_client(WRITE)
    trail = shop["trail"]
    listed = client.get(f"/api/v1/products/{trail.pk}/variants/").json()["results"]
    assert [v["sku"] for v in listed] == ["KTS-42", "KTS-43"]
    response = client.post(
        f"/api/v1/products/{trail.pk}/variants/",
        {"sku": "KTS-44", "price": "79.00", "options": {"EU size": 44}, "id": 1, "available": 5, "on_hand": 5},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == "/api/v1/variants/KTS-44/"
    assert (body["product"], body["position"], body["options"], body["available"]) == (
        trail.pk,
        2,
        {"EU size": "44"},
        0,
    )
    detail = product_detail(slug=trail.slug)
    assert detail.price_min == Decimal("79.00"), "the new lowest price shows in the shop"
    assert "KTS-44" in [v.sku for v in detail.variants]
    assert levels("KTS-44") == {"KTS-44": (0, 0)}, "stock is set through /stock/ (inventory:write)"

    taken = client.post(f"/api/v1/products/{trail.pk}/variants/", {"sku": "KOS-1", "price": "1.00"}, format="json")
    assert taken.status_code == 400
    assert "sku" in taken.json()["error"]["fields"]
    assert client.get("/api/v1/products/999999/variants/").status_code == 404
    missing = client.post("/api/v1/products/999999/variants/", {"sku": "X-1", "price": "1.00"}, format="json")
    assert missing.status_code == 404


def test_a_variant_changed_by_sku_shows_in_the_shop(shop):
    client = key_client(WRITE)
    response = client.patch("/api/v1/variants/KTS-42/", {"price": "60.00", "options": {"EU size": "42.5"}},
                            format="json")  # fmt: skip
    assert response.status_code == 200
    assert (response.json()["price"], response.json()["options"]) == ("60.00", {"EU size": "42.5"})
    assert product_detail(slug="kestrel-trail-shoe").price_min == Decimal("60.00")
    listing = product_listing(query=ListingQuery(sort="price_asc"), category_id=shop["shoes"].pk)
    assert listing.items[0].price_min == Decimal("60.00")
    assert outbox.events("catalog.product.changed.v1")[-1]["payload"]["listing_changed"] is True

    clear = client.patch("/api/v1/variants/KTS-42/", {"compare_at_price": "70.00"}, format="json")
    assert clear.json()["compare_at_price"] == "70.00"
    below = client.patch("/api/v1/variants/KTS-42/", {"price": "75.00"}, format="json")
    assert below.status_code == 400, "the compare-at price would be under the price"
    assert "compare_at_price" in below.json()["error"]["fields"]
    assert client.patch("/api/v1/variants/KTS-42/", {"compare_at_price": None}, format="json").status_code == 200
    off = client.patch("/api/v1/variants/KTS-42/", {"is_active": False, "sku": "NEW", "price": "61.00"}, format="json")
    assert (off.json()["sku"], off.json()["is_active"], off.json()["price"]) == ("KTS-42", False, "61.00")
    assert not product_detail(slug="kestrel-trail-shoe").in_stock, "its only stocked variant is off sale"
    assert client.patch("/api/v1/variants/NOPE/", {"price": "1.00"}, format="json").status_code == 404
    for bad in ({"price": "-5"}, {"price": "x"}, {"weight_grams": -1}, {"options": "big"}):
        response = client.patch("/api/v1/variants/KTS-42/", bad, format="json")
        assert response.status_code == 400
        assert set(bad) <= set(response.json()["error"]["fields"])


def test_variants_list_filters(shop):
    client = key_client(READ)

    def skus(**params) -> list[str]:
        return sorted(v["sku"] for v in client.get("/api/v1/variants/", params).json()["results"])

    assert skus() == ["KOS-1", "KTS-42", "KTS-43"]
    assert skus(product=shop["hidden"].pk) == ["KOS-1"]
    assert skus(sku="KTS-42,KOS-1") == ["KOS-1", "KTS-42"]
    later = timezone.now()
    Variant.objects.get(sku="KTS-43").save()
    assert skus(updated_since=later.isoformat()) == ["KTS-43"]
    assert client.get("/api/v1/variants/KTS-43/").json()["price"] == "85.00"
    assert client.get("/api/v1/variants/NOPE/").status_code == 404


# ---------------------------------------------------------------- stock


def test_stock_of_a_sku_is_read_and_set(shop):
    client = key_client(INVENTORY)
    body = client.get("/api/v1/stock/KTS-43/").json()
    assert (body["sku"], body["on_hand"], body["reserved"], body["available"]) == ("KTS-43", 0, 0, 0)
    start = timezone.now()
    response = client.put("/api/v1/stock/KTS-43/", {"on_hand": 12, "reserved": 9, "available": 1}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["on_hand"], body["reserved"], body["available"]) == (12, 0, 12), "reserved cannot be set"
    assert body["updated_at"] >= start.isoformat().replace("+00:00", "Z")[:19]
    assert levels("KTS-43") == {"KTS-43": (12, 0)}
    detail = product_detail(slug="kestrel-trail-shoe")
    assert [v.available for v in detail.variants if v.sku == "KTS-43"] == [12]
    event = outbox.events("catalog.stock.changed.v1")[-1]["payload"]
    assert (event["sku"], event["available"], event["available_before"]) == ("KTS-43", 12, 0)
    assert client.put("/api/v1/stock/NOPE/", {"on_hand": 1}, format="json").status_code == 404
    assert client.get("/api/v1/stock/NOPE/").status_code == 404


def test_stock_cannot_be_set_below_what_is_reserved_or_below_zero(shop):
    stock_reserve(key="order-1", lines=[(Variant.objects.get(sku="KTS-42").pk, 2)])
    client = key_client(INVENTORY)
    response = client.put("/api/v1/stock/KTS-42/", {"on_hand": 1}, format="json")
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert "reserved" in response.json()["error"]["message"]
    assert "2 are reserved" in response.json()["error"]["message"]
    for bad in ({"on_hand": -1}, {"on_hand": "many"}, {"on_hand": 1.5}, {}, {"on_hand": 2**31}):
        response = client.put("/api/v1/stock/KTS-42/", bad, format="json")
        assert response.status_code == 400, bad
        assert "on_hand" in response.json()["error"]["fields"]
    assert levels("KTS-42") == {"KTS-42": (3, 2)}
    assert client.put("/api/v1/stock/KTS-42/", {"on_hand": 2}, format="json").json()["available"] == 0


def test_stock_list_filters_by_skus_and_updated_since(shop):
    client = key_client(READ)
    assert {s["sku"] for s in client.get("/api/v1/stock/").json()["results"]} == {"KTS-42", "KTS-43", "KOS-1"}
    picked = client.get("/api/v1/stock/", {"sku": "KTS-42,KOS-1"}).json()["results"]
    assert {(s["sku"], s["on_hand"]) for s in picked} == {("KTS-42", 3), ("KOS-1", 1)}
    later = timezone.now()
    stock_set(sku="KTS-43", on_hand=5)
    assert [s["sku"] for s in client.get("/api/v1/stock/", {"updated_since": later.isoformat()}).json()["results"]] == [
        "KTS-43"
    ]
    assert [s["sku"] for s in client.get("/api/v1/stock/", {"ordering": "-on_hand"}).json()["results"]] == [
        "KTS-43", "KTS-42", "KOS-1"
    ]  # fmt: skip


# ---------------------------------------------------------------- stock in bulk


def many_skus(n: int, *, per_product: int = 10, on_hand: int = 1) -> list[str]:
    """n SKUs on n / per_product products, each with on_hand in stock (bulk inserts: quick)."""
    category = make_category("Bulk")
    skus = []
    for p in range(0, n, per_product):
        product = Product.objects.create(title=f"Bulk {p}", slug=f"bulk-{p}", category=category)
        variants = Variant.objects.bulk_create(
            [Variant(product=product, sku=f"B-{i:04d}", price=Decimal("5.00"), position=i)
             for i in range(p, min(p + per_product, n))]
        )  # fmt: skip
        StockItem.objects.bulk_create([StockItem(variant=v, on_hand=on_hand) for v in variants])
        skus += [v.sku for v in variants]
    refresh_products(product_ids=Product.objects.filter(category=category).values_list("pk", flat=True))
    return skus


def test_500_stock_levels_are_set_in_one_request(shop):
    skus = many_skus(500)
    client = key_client(INVENTORY)
    items = [{"sku": sku, "on_hand": i % 7} for i, sku in enumerate(skus)]
    response = client.post("/api/v1/stock/bulk/", {"items": items}, format="json")
    assert response.status_code == 200, response.json()
    results = response.json()["items"]
    assert [(r["sku"], r["on_hand"], r["available"]) for r in results] == [(s, i % 7, i % 7) for i, s in
                                                                           enumerate(skus)]  # fmt: skip
    assert levels(*skus) == {sku: (i % 7, 0) for i, sku in enumerate(skus)}
    changed = [i for i in range(500) if i % 7 != 1]
    assert len(outbox.events("catalog.stock.changed.v1")) == len(changed), "one event per level that changed"
    assert product_detail(slug="bulk-0").in_stock, "listing fields refreshed"
    assert [v.available for v in product_detail(slug="bulk-0").variants] == [i % 7 for i in range(10)]


def test_501_stock_levels_are_refused(shop):
    items = [{"sku": f"B-{i:04d}", "on_hand": 1} for i in range(501)]
    response = key_client(INVENTORY).post("/api/v1/stock/bulk/", {"items": items}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()["error"]["fields"]
    assert key_client(INVENTORY).post("/api/v1/stock/bulk/", {"items": []}, format="json").status_code == 400


def test_one_bad_item_among_many_changes_nothing_and_every_bad_one_is_listed(shop):
    skus = many_skus(120, on_hand=4)
    stock_reserve(key="order-1", lines=[(Variant.objects.get(sku="B-0050").pk, 3)])
    before = levels(*skus, "KTS-42")
    events_before = len(outbox.events())
    items = [{"sku": sku, "on_hand": 9} for sku in skus]
    items[7]["sku"] = "NO-SUCH-SKU"
    items[50]["on_hand"] = 2  # B-0050 has 3 reserved
    items[90]["sku"] = "B-0010"  # given twice
    items.append({"sku": "KTS-42", "on_hand": 0})
    response = key_client(INVENTORY).post("/api/v1/stock/bulk/", {"items": items}, format="json")
    assert response.status_code == 400
    bad = response.json()["error"]["fields"]["items"]
    assert set(bad) == {"7", "50", "90"}
    assert "NO-SUCH-SKU" in bad["7"]["sku"][0]
    assert "3 of B-0050 are reserved" in bad["50"]["on_hand"][0]
    assert "twice" in bad["90"]["sku"][0]
    assert levels(*skus, "KTS-42") == before, "every level as it was"
    assert len(outbox.events()) == events_before, "and nothing published"

    negative = key_client(INVENTORY).post(
        "/api/v1/stock/bulk/", {"items": [{"sku": "KTS-42", "on_hand": 1}, {"sku": "KTS-43", "on_hand": -1},
                                          {"sku": "KTS-43"}]}, format="json"
    )  # fmt: skip
    assert negative.status_code == 400
    assert set(negative.json()["error"]["fields"]["items"]) == {"1", "2"}
    assert levels("KTS-42") == {"KTS-42": (3, 0)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_updates_of_overlapping_skus_in_opposite_orders_do_not_deadlock():
    skus = many_skus(200, per_product=5)
    _, token = make_key(INVENTORY)
    forward = [{"sku": sku, "on_hand": 10} for sku in skus[:150]]
    backward = [{"sku": sku, "on_hand": 20} for sku in reversed(skus[50:])]
    answers: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def send(items) -> None:
        from django.db import connections

        client = client_with(token)
        try:
            for _ in range(5):
                barrier.wait(timeout=30)
                answers.append(client.post("/api/v1/stock/bulk/", {"items": items}, format="json").status_code)
        except BaseException as exc:  # a deadlock would surface here as a server error
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(items,)) for items in (forward, backward)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert answers == [200] * 10
    final = levels(*skus)
    assert all(final[sku] == (10, 0) for sku in skus[:50])
    assert all(final[sku] == (20, 0) for sku in skus[150:])
    assert all(final[sku] in {(10, 0), (20, 0)} for sku in skus[50:150])


# ---------------------------------------------------------------- never a server error


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/categories/", {"name": 5, "parent": "x", "is_active": "perhaps"}),
        ("post", "/api/v1/categories/", ["not", "an", "object"]),
        ("patch", "/api/v1/categories/{shoes}/", {"position": 10**12}),
        ("post", "/api/v1/products/", {"title": "x", "category": None}),
        ("post", "/api/v1/products/", {"title": "x", "category": "{shoes}", "variants": [None]}),
        ("patch", "/api/v1/products/{trail}/", {"variants": [{"price": "1.00"}]}),
        ("patch", "/api/v1/products/{trail}/", {"variants": [{"sku": "KTS-42"}, {"sku": "KTS-42"}]}),
        ("patch", "/api/v1/products/{trail}/", {"brand": 12, "attributes": {"a": None}}),
        ("post", "/api/v1/products/{trail}/variants/", {"sku": "X" * 65, "price": "1"}),
        ("patch", "/api/v1/variants/KTS-42/", {"price": None}),
        ("patch", "/api/v1/variants/KTS-42/", {"price": "NaN"}),
        ("patch", "/api/v1/variants/KTS-42/", {"price": "Infinity"}),
        ("put", "/api/v1/stock/KTS-42/", {"on_hand": None}),
        ("post", "/api/v1/stock/bulk/", {"items": "all"}),
        ("post", "/api/v1/stock/bulk/", {"items": [{"sku": None, "on_hand": 1}]}),
        ("post", "/api/v1/stock/bulk/", {}),
    ],
    ids=lambda v: str(v)[:50],
)
def test_invalid_input_gets_400_with_the_fields_named(shop, method, path, body):
    path = path.format(shoes=shop["shoes"].pk, trail=shop["trail"].pk)
    if isinstance(body, dict) and body.get("category") == "{shoes}":
        body["category"] = shop["shoes"].pk
    response = getattr(key_client(WRITE, INVENTORY), method)(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]
    assert levels("KTS-42") == {"KTS-42": (3, 0)}
    assert Variant.objects.get(sku="KTS-42").price == Decimal("80.00")


def test_a_malformed_json_body_gets_400(shop):
    client = key_client(WRITE)
    response = client.generic("POST", "/api/v1/products/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "parse_error"
