"""What the storefront does when the catalog changes: forget the cached pages that show it."""

from __future__ import annotations

from catalog.events import CategoriesChanged, ProductChanged, StockChanged
from kernel.bus import INLINE, subscribe
from shop import caching


@subscribe(ProductChanged, mode=INLINE)
def forget_product_pages(event: ProductChanged) -> None:
    caching.bump(caching.product_key(event.slug))
    if event.listing_changed:
        caching.bump(caching.LISTING)


@subscribe(StockChanged, mode=INLINE)
def forget_product_page_on_stock(event: StockChanged) -> None:
    caching.bump(caching.product_key(event.product_slug))


@subscribe(CategoriesChanged, mode=INLINE)
def forget_all_catalog_pages(event: CategoriesChanged) -> None:
    caching.bump(caching.LISTING)
