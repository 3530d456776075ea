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
