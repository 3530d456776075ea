"""The demo catalog's bulk seed (the default) writes the same catalog as the reference path through
refresh_products, and the shop works on it."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog.models import Brand, Category, Product, ProductImage, ProductOptionValue, StockItem, Variant
from catalog.services import demo_catalog_seed

pytestmark = pytest.mark.django_db


def _rows(queryset, *fields: str) -> list[tuple]:
    return sorted(queryset.values_list(*fields), key=repr)


VARIANT_FIELDS = ("sku", "options", "price", "compare_at_price", "currency", "weight_grams", "position", "is_active",
                  "listing_image")  # fmt: skip


def catalog_rows() -> dict[str, list[tuple]]:
    """Every row the seed writes, ids and timestamps left out, foreign keys by natural key."""
    product_fields = [
        f.attname
        for f in Product._meta.concrete_fields
        if f.attname not in ("id", "updated_at", "brand_id", "category_id", "search_vector")
    ]
    if connection.vendor == "postgresql":
        index = "SELECT p.slug, p.search_vector::text FROM catalog_product p"
    else:  # the FTS5 rows, by product
        index = (
            "SELECT p.slug, f.title, f.brand, f.description"
            " FROM catalog_product_fts f JOIN catalog_product p ON p.id = f.rowid"
        )
    with connection.cursor() as cursor:
        cursor.execute(index)
        vectors = sorted(cursor.fetchall())
    return {
        "categories": _rows(Category.objects, "slug", "name", "parent__slug", "description", "position", "is_active"),
        "brands": _rows(Brand.objects, "slug", "name"),
        "products": _rows(Product.objects, *product_fields, "brand__slug", "category__slug"),
        "search index": vectors,
        "variants": _rows(Variant.objects, "product__slug", *VARIANT_FIELDS),
        "stock": _rows(StockItem.objects, "variant__sku", "on_hand", "reserved"),
        "images": _rows(
            ProductImage.objects, "product__slug", "image", "listing", "large", "alt_text", "colour", "position"
        ),
        "option values": _rows(ProductOptionValue.objects, "product__slug", "key", "name", "value"),
    }


def test_bulk_seed_writes_the_same_catalog_as_the_reference_path():
    reference = demo_catalog_seed(products=40, seed=5, bulk=False)
    expected = catalog_rows()
    assert len(expected["products"]) == 40
    assert len(expected["variants"]) > 40
    assert all(expected[table] for table in expected), "every table has rows"
    Product.objects.all().delete()  # variants, stock, images and option values go with them

    bulk = demo_catalog_seed(products=40, seed=5)
    assert (bulk.created, bulk.existing, bulk.categories, bulk.brands) == (
        reference.created, reference.existing, reference.categories, reference.brands,
    )  # fmt: skip
    found = catalog_rows()
    for table in expected:
        assert found[table] == expected[table], table


def test_bulk_seed_is_idempotent_and_completes_a_smaller_catalog(monkeypatch):
    import catalog.demo

    monkeypatch.setattr(catalog.demo, "BULK_CHUNK", 7)  # several chunks, a short last one
    monkeypatch.setattr(catalog.demo, "BULK_ROWS", 10)
    demo_catalog_seed(products=12, seed=6, bulk=False)
    result = demo_catalog_seed(products=30, seed=6)
    assert (result.created, result.existing) == (18, 12)
    grown = catalog_rows()
    again = demo_catalog_seed(products=30, seed=6)
    assert (again.created, again.existing) == (0, 30)
    assert catalog_rows() == grown

    Product.objects.all().delete()
    demo_catalog_seed(products=30, seed=6, bulk=False)
    assert catalog_rows() == grown, "bulk chunks after reference batches give the reference catalog"


def test_the_shop_works_on_a_bulk_seeded_catalog(client):
    demo_catalog_seed(products=60, seed=8)
    product = Product.objects.filter(in_stock=True).select_related("category").order_by("pk").first()
    page = client.get(f"/p/{product.slug}/")
    assert page.status_code == 200
    assert product.title in page.content.decode()

    listing = client.get(f"/c/{product.category.slug}/")
    assert listing.status_code == 200
    shown = Product.objects.filter(category=product.category).order_by("-popularity", "id").first()
    assert shown.title in listing.content.decode()

    found = client.get("/search/", {"q": product.brand_name})
    assert found.status_code == 200
    assert any(p.title in found.content.decode() for p in Product.objects.filter(brand_name=product.brand_name))
    # a typo still finds it (the trigram side of the index)
    typo = client.get("/search/", {"q": product.title.split()[-1][:-1]})
    assert typo.status_code == 200
