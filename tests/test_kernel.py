from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.db import ModuleRouter, db_for_module
from kernel.money import CurrencyMismatch, Money


def test_money_is_decimal_with_a_currency():
    price = Money("19.99", "eur")
    assert price.currency == "EUR"
    assert price.amount == Decimal("19.99")
    assert price * 3 == Money("59.97", "EUR")
    assert (price + Money("0.01", "EUR")).amount == Decimal("20.00")
    assert Money("2.005", "EUR").rounded() == Money("2.01", "EUR")
    assert Money("1500.4", "JPY").rounded() == Money("1500", "JPY")
    assert str(Money("1234.5", "EUR")) == "1,234.50 EUR"


def test_money_refuses_floats_mixed_currencies_and_nonsense():
    with pytest.raises(TypeError):
        Money(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(CurrencyMismatch):
        Money("1", "EUR") + Money("1", "USD")
    with pytest.raises(ValueError, match="not an amount"):
        Money("abc", "EUR")
    with pytest.raises(ValueError, match="ISO 4217"):
        Money("1", "EURO")
    with pytest.raises(ValueError, match="finite"):
        Money("Infinity", "EUR")


class _Meta:
    def __init__(self, label: str) -> None:
        self.app_label = label


class _Model:
    def __init__(self, label: str) -> None:
        self._meta = _Meta(label)


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_router_sends_a_module_to_its_own_database_when_one_is_configured(settings):
    settings.DATABASES = {**settings.DATABASES, "catalog": settings.DATABASES["default"]}
    router = ModuleRouter()
    assert db_for_module("catalog") == "catalog"
    assert db_for_module("orders") == "default"
    assert router.db_for_write(_Model("catalog")) == "catalog"
    assert router.db_for_read(_Model("orders")) == "default"
    assert router.allow_migrate("catalog", "catalog") is True
    assert router.allow_migrate("default", "catalog") is False
    assert router.allow_migrate("catalog", "kernel") is True, "every database carries its own outbox"
    assert router.allow_migrate("catalog", "sessions") is False


def test_router_refuses_relations_between_modules_but_allows_the_user_model():
    router = ModuleRouter()
    assert router.allow_relation(_Model("orders"), _Model("catalog")) is False
    assert router.allow_relation(_Model("orders"), _Model("accounts")) is False, "not even to the user model"
    assert router.allow_relation(_Model("orders"), _Model("orders")) is True


@pytest.mark.redis
def test_redis_cache_backend_reuses_one_client_per_pool_and_behaves_like_djangos():
    import os
    import uuid

    from kernel.cache import RedisCache

    cache = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})
    cache.set("basket", {"lines": [1, 2]}, 30)
    assert cache.get("basket") == {"lines": [1, 2]}
    assert cache.add("basket-version", 1)
    assert cache.incr("basket-version") == 2
    assert cache.get_many(["basket", "nothing"]) == {"basket": {"lines": [1, 2]}}
    assert cache._cache.get_client() is cache._cache.get_client(), "one redis.Redis, not one per call"
    cache.delete_many(["basket", "basket-version"])
    assert cache.get("basket") is None


# ---------------------------------------------------------------- reads compiled once (kernel.db.prepared_rows)


def _variant_rows(variant_ids):
    from catalog.models import Variant

    return (
        Variant.objects.filter(pk__in=variant_ids, is_active=True)
        .order_by("pk")
        .values_list(
            "pk", "sku", "options", "price", "compare_at_price", "is_active", "stock__on_hand", "product__title"
        )
    )


@pytest.mark.django_db
def test_a_prepared_read_gives_what_the_orm_gives_and_compiles_once_per_shape(monkeypatch):
    from django.db.models.sql.compiler import SQLCompiler

    from catalog.models import StockItem, Variant
    from kernel.db import prepared_rows
    from tests.factories import make_category, make_product

    shelf = make_category("Shelf")
    shirt = make_product("Shirt", shelf, variants=[
        {"options": {"Colour": "Rose", "Size": "M"}, "price": "19.90", "compare_at_price": "24.50", "stock": 3},
        {"options": {"Colour": "Navy"}, "price": "21.00", "stock": 0},
    ])  # fmt: skip
    lamp = make_product("Lamp", shelf, variants=[{"options": {}, "price": "5.05", "stock": 1}])
    ids = list(Variant.objects.filter(product__in=[shirt, lamp]).order_by("pk").values_list("pk", flat=True))
    StockItem.objects.filter(variant_id=ids[2]).delete()  # a variant without a stock row: NULL through the join

    compiled = []
    real = SQLCompiler.as_sql
    monkeypatch.setattr(SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(1) or real(self, *a, **k))
    for wanted in (ids, ids[:2], [ids[1], ids[0]], ids[1:3], [999_999], ids):
        orm = list(_variant_rows(wanted))
        assert prepared_rows("test.variants", _variant_rows, wanted, using="default") == orm
    rows = prepared_rows("test.variants", _variant_rows, ids, using="default")
    assert rows[0][2:6] == ({"Colour": "Rose", "Size": "M"}, Decimal("19.90"), Decimal("24.50"), True)
    assert rows[2][6] is None
    # six ORM reads compiled six times; the prepared ones once for each number of ids (3, 2, 1)
    assert len(compiled) == 6 + 3


@pytest.mark.django_db
def test_a_prepared_read_of_nothing_asks_nothing_and_refuses_an_argument_used_twice(django_assert_num_queries):
    from catalog.models import Product
    from kernel.db import prepared_rows

    with django_assert_num_queries(0):
        assert prepared_rows("test.variants", _variant_rows, [], using="default") == []
    with pytest.raises(ValueError, match="one parameter"):
        prepared_rows("test.twice", lambda s: Product.objects.filter(slug=s, title=s).values_list("pk"), "x",
                      using="default")  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_unique_by_finds_one_row_by_its_key_and_can_lock_it():
    from django.db import transaction

    from kernel.db import unique_by
    from orders.models import Order
    from tests.factories import make_category, make_product

    shelf = make_category("Shelf")
    lamp = make_product("Lamp", shelf)
    assert unique_by(type(lamp), pk=lamp.pk).title == "Lamp"
    assert unique_by(type(lamp), slug="lamp").pk == lamp.pk
    assert unique_by(type(lamp), slug="no-such-lamp") is None
    assert unique_by(type(lamp), pk=lamp.pk + 1000) is None
    assert unique_by(Order, number=None) is None, "IS NULL: no parameter, the ORM's own query"
    with transaction.atomic():
        locked = unique_by(type(lamp), pk=lamp.pk, for_update=True)
        locked.title = "Desk lamp"
        locked.save(update_fields=["title"])
    assert unique_by(type(lamp), slug="lamp").title == "Desk lamp", "an instance from the prepared read saves"
    with pytest.raises(transaction.TransactionManagementError):  # a lock outside a transaction would hold nothing
        unique_by(type(lamp), pk=lamp.pk, for_update=True)
