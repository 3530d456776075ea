"""What the storefront does when the catalog changes (forget the cached pages that show it) and when a customer
deletes their account (drop their cart).

Bumping a cache version twice is harmless, and so is deleting lines already deleted, so these are idempotent
subscribers (no delivery record kept).
"""

from __future__ import annotations

from accounts.events import UserDeleted
from catalog.events import CategoriesChanged, ProductChanged, StockChanged
from kernel.bus import INLINE, subscribe
from kernel.db import atomic
from shop import caching
from shop.cart import DatabaseCartStorage
from shop.templatetags.shop_tags import availability


@subscribe(ProductChanged, mode=INLINE, idempotent=True)
def forget_product_pages(event: ProductChanged) -> None:
    caching.bump(caching.product_key(event.slug))
    if event.listing_changed:
        caching.bump(caching.LISTING)


@subscribe(StockChanged, mode=INLINE, idempotent=True)
def forget_product_page_on_stock(event: StockChanged) -> None:
    """Only when what the page says changes ("In stock", "Only 3 left", "Out of stock"): selling the 40th of 50
    leaves a busy product's page cached."""
    if event.available_before is None or availability(event.available_before) != availability(event.available):
        caching.bump(caching.product_key(event.product_slug))


@subscribe(CategoriesChanged, mode=INLINE, idempotent=True)
def forget_all_catalog_pages(event: CategoriesChanged) -> None:
    caching.bump(caching.LISTING)


@subscribe(UserDeleted, mode=INLINE, idempotent=True)
def drop_cart_of_deleted_user(event: UserDeleted) -> None:
    """Cart lines keep a user id, not a foreign key, so nothing cascades: a deleted account's cart goes here."""
    with atomic(module="shop"):
        DatabaseCartStorage(event.user_id).clear()
