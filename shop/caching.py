"""Cached page parts for the storefront, invalidated by catalog events.

A page's cacheable part (what every visitor sees alike: the listing, the product, breadcrumbs, head tags) is
rendered once and kept in the cache under a key that includes version numbers. shop.handlers bumps those numbers
when catalog publishes an event, so a price or stock change shows on the very next request: nothing is deleted,
old keys simply stop being asked for and expire.

  listing version   home, category and search pages (bumped when what listings show changes)
  product version   one product page (bumped on any change to that product: price, stock, text)

Caching is on when SHOP_PAGE_CACHE_SECONDS > 0, which is the default with Redis; without Redis every process
would have its own cache and could not be invalidated from another, so it is off.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

T = TypeVar("T")
LISTING = "shop:v:listing"
logger = logging.getLogger(__name__)


def product_key(slug: str) -> str:
    return f"shop:v:product:{slug}"


def _fresh() -> int:
    return time.time_ns()  # never reuses an old number, even after the cache lost the key


def versions(*keys: str) -> str:
    found = cache.get_many(keys)
    missing = {k: _fresh() for k in keys if k not in found}
    if missing:
        for key, value in missing.items():
            if not cache.add(key, value, timeout=None):
                missing[key] = cache.get(key, value)
        found.update(missing)
    return "-".join(str(found[k]) for k in keys)


def bump(*keys: str) -> None:
    for key in keys:
        try:
            cache.incr(key)
        except ValueError:  # not there (never asked for, or evicted): a fresh number is just as good
            cache.set(key, _fresh(), timeout=None)
        # any other error (cache unreachable) propagates: the event stays in the outbox and is delivered again


def enabled() -> bool:
    return settings.SHOP_PAGE_CACHE_SECONDS > 0


def cached(name: str, version_keys: tuple[str, ...], build: Callable[[], T]) -> T:
    """build() once per (name, versions); `name` must identify everything the result depends on."""
    if not enabled():
        return build()
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    try:
        key = f"shop:page:{digest}:{versions(*version_keys)}"
        value = cache.get(key)
    except Exception:  # the cache is down: serve the page uncached rather than fail (readyz reports it)
        logger.warning("page cache unavailable; rendering %s without it", name, exc_info=True)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, timeout=settings.SHOP_PAGE_CACHE_SECONDS)
        except Exception:
            logger.warning("page cache unavailable; %s not stored", name, exc_info=True)
    return value
