"""Stock reservations: conditional updates that cannot oversell, in a fixed order, idempotent by key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product, StockItem
from catalog.services import (
    OutOfStock,
    reservations_expire,
    stock_commit,
    stock_release,
    stock_reserve,
    stock_restock,
)
from tests.concurrency import race
from tests.factories import make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]


@pytest.fixture
def lamp():
    return make_product("Brass Lamp", make_category("Lighting"),
                        variants=[{"options": {}, "price": "80.00", "stock": 5}]).variants.get()  # fmt: skip


def stock(variant) -> tuple[int, int]:
    item = StockItem.objects.get(variant=variant)
    return item.on_hand, item.reserved


def test_reserve_commit_release_and_restock(lamp):
    held = stock_reserve(key="order-1", lines=[(lamp.pk, 2)])
    assert stock(lamp) == (5, 2)
    assert stock_reserve(key="order-1", lines=[(lamp.pk, 2)]).status == "held", "same key, same reservation"
    assert stock(lamp) == (5, 2)
    sold = stock_commit(key="order-1")
    assert (sold.key, sold.status, sold.expires_at, sold.lines) == ("order-1", "committed", held.expires_at, held.lines)
    again = stock_commit(key="order-1")
    assert (again.status, again.expires_at, again.lines) == ("committed", held.expires_at, held.lines)
    assert stock(lamp) == (3, 0), "sold: once"
    stock_release(key="order-1")
    assert stock(lamp) == (3, 0), "a sale is not released by mistake"
    stock_restock(key="order-1")
    assert stock(lamp) == (5, 0), "a cancelled sale goes back on the shelf"

    stock_reserve(key="order-2", lines=[(lamp.pk, 5)])
    assert not Product.objects.get(pk=lamp.product_id).in_stock, "listings show it sold out"
    stock_release(key="order-2")
    assert stock(lamp) == (5, 0)
    assert Product.objects.get(pk=lamp.product_id).in_stock


def test_cannot_reserve_more_than_is_there_and_nothing_is_half_held(lamp):
    other = make_product("Shade", make_category("Shades"), variants=[{"price": "10", "stock": 9}]).variants.get()
    with pytest.raises(OutOfStock) as caught:
        stock_reserve(key="order-1", lines=[(other.pk, 1), (lamp.pk, 6)])
    assert str(caught.value) == "Only 5 of Brass Lamp left; you asked for 6."
    assert stock(other) == (9, 0), "all lines or none"
    assert stock(lamp) == (5, 0)


def test_expired_reservations_are_released(lamp):
    stock_reserve(key="order-1", lines=[(lamp.pk, 3)], ttl_seconds=60)
    assert reservations_expire() == 0
    assert reservations_expire(now=timezone.now() + timedelta(minutes=2)) == 1
    assert stock(lamp) == (5, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_buyers_for_the_last_five_never_oversell(lamp):

    def buy(i: int) -> str:
        stock_reserve(key=f"order-{i}", lines=[(lamp.pk, 1)])
        return "held"

    outcomes = race(buy, refusals=(OutOfStock,), timeout=60)
    assert outcomes.count("held") == 5
    assert outcomes.count("Brass Lamp has just sold out.") == 15
    assert stock(lamp) == (5, 5)
