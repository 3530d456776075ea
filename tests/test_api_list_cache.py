"""The cached lists (products, orders): a repeated read is served from the cache, and any change to what the list
shows (a price, a hold on stock, an order's status) is in the very next answer."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Variant
from catalog.services import stock_reserve
from orders import services
from tests.api import key_client
from tests.test_api_catalog import shop  # noqa: F401 - the fixture
from tests.test_api_orders import goods, order_at  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _list_cache_on(settings):
    settings.API_LIST_CACHE_SECONDS = 60


def read(client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return response, len(ctx)


def test_a_repeated_product_list_comes_from_the_cache_and_a_change_shows_at_once(shop):  # noqa: F811
    client = key_client("catalog:write", "inventory:write")
    path = "/api/v1/products/?page_size=100"
    first, computed = read(client, path)
    again, cached = read(client, path)
    assert again.content == first.content
    assert again["ETag"] == first["ETag"]
    assert cached < computed
    assert client.get(path, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    assert client.patch("/api/v1/variants/KTS-42/", {"price": "75.00"}, format="json").status_code == 200
    prices = {v["sku"]: v["price"] for p in read(client, path)[0].json()["results"] for v in p["variants"]}
    assert prices["KTS-42"] == "75.00"

    stock_reserve(key="order-1", lines=[(Variant.objects.get(sku="KTS-42").pk, 1)])
    available = {v["sku"]: v["available"] for p in read(client, path)[0].json()["results"] for v in p["variants"]}
    assert available["KTS-42"] == 2, "a hold moves the stock row's updated_at, which the list cache checks"


@pytest.mark.django_db(transaction=True)
def test_a_repeated_order_list_comes_from_the_cache_and_a_status_change_shows_at_once(goods):  # noqa: F811
    number = order_at(goods, "paid", key="cache-1")
    client = key_client("orders:write")
    path = "/api/v1/orders/?page_size=100"
    first, computed = read(client, path)
    again, cached = read(client, path)
    assert again.content == first.content
    assert cached < computed
    services.order_cancel(number=number, actor="staff:1")
    statuses = {o["number"]: o["status"] for o in read(client, path)[0].json()["results"]}
    assert statuses[number] == "cancelled"


def test_the_browsable_api_is_not_cached(shop, client):  # noqa: F811
    from tests.factories import StaffFactory

    client.force_login(StaffFactory(is_superuser=True))
    page = client.get("/api/v1/products/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"<html" in page.content.lower()
