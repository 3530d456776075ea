"""Staff manage the catalog in the admin; every save goes through catalog's services."""

from __future__ import annotations

import pytest

from catalog.models import Product, StockItem
from tests import outbox
from tests.factories import SuperuserFactory, make_brand, make_category, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(SuperuserFactory())
    return client


@pytest.fixture
def product():
    variants = [{"options": {"EU size": "42"}, "price": "80.00", "stock": 3, "sku": "KTS-42"}]
    return make_product("Kestrel Trail Shoe", make_category("Shoes"), brand=make_brand("Kestrel"), variants=variants)


ADMIN_PAGES = [
    "/admin/catalog/product/",
    "/admin/catalog/category/",
    "/admin/catalog/brand/",
    "/admin/catalog/stockitem/",
    "/admin/catalog/product/add/",
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_catalog_admin_pages_open(staff_client, product, url):
    assert staff_client.get(url).status_code == 200


def test_saving_a_product_in_the_admin_refreshes_listings_and_tells_the_shop(staff_client, product):
    url = f"/admin/catalog/product/{product.pk}/change/"
    form = staff_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("attributes",)}
    variant = product.variants.get()
    data.update(
        {
            "title": "Kestrel Trail Shoe II",
            "attributes": "{}",
            "brand": product.brand_id,
            "category": product.category_id,
            "published_at_0": "2026-01-01",
            "published_at_1": "00:00:00",
            "variants-TOTAL_FORMS": "1",
            "variants-INITIAL_FORMS": "1",
            "variants-0-id": variant.pk,
            "variants-0-product": product.pk,
            "variants-0-sku": "KTS-42",
            "variants-0-options": '{"EU size": "42"}',
            "variants-0-price": "70.00",
            "variants-0-currency": "EUR",
            "variants-0-weight_grams": "900",
            "variants-0-position": "0",
            "variants-0-is_active": "on",
            "images-TOTAL_FORMS": "0",
            "images-INITIAL_FORMS": "0",
        }
    )
    data.pop("created_at", None)
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    product.refresh_from_db()
    assert product.title == "Kestrel Trail Shoe II"
    assert str(product.min_price) == "70.00", "listing price recomputed from the variant"
    event = outbox.events("catalog.product.changed.v1")[-1]
    assert event["payload"]["listing_changed"] is True


def test_stock_is_changed_through_the_stock_service(staff_client, product):
    stock = StockItem.objects.get(variant__sku="KTS-42")
    changelist = "/admin/catalog/stockitem/"
    data = {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-variant": stock.pk, "form-0-on_hand": "0",
            "_save": "Save"}  # fmt: skip
    assert staff_client.post(changelist, data).status_code == 302
    assert StockItem.objects.get(pk=stock.pk).on_hand == 0
    assert not Product.objects.get(pk=product.pk).in_stock
    assert outbox.events("catalog.stock.changed.v1")

    StockItem.objects.filter(pk=stock.pk).update(on_hand=5, reserved=4)
    data["form-0-on_hand"] = "2"
    response = staff_client.post(changelist, data, follow=True)
    assert "Not saved" in response.content.decode()
    assert StockItem.objects.get(pk=stock.pk).on_hand == 5
