"""Public face of catalog: the functions other modules may call.

Keyword-only arguments; plain values and frozen dataclasses in and out, never models or querysets. The returned
data carries slugs and ids, never a shop URL: the shop builds its own links.
Reads: category_tree, product_listing (category pages and search, with facets), product_detail, product_suggest,
products_featured, products_newest, variants_get, sitemap_products.
Writes: refresh_products (recompute what listings show and publish catalog.product.changed.v1), stock_set,
categories_changed, images_render, demo_catalog_seed.
Stock reservations: stock_reserve, stock_commit, stock_sell, stock_release, stock_restock,
reservations_expire.

The code lives in catalog's private modules, by capability: data (dataclasses, exceptions, constants),
categories, listing, detail, projection (the listing read model), stock and demo.
"""

from __future__ import annotations

from catalog.categories import categories_changed, category_tree
from catalog.data import (
    DEFAULT_PER_PAGE,
    MAX_OPTION_FILTERS,
    OPTION_ORDER,
    PER_PAGE_CHOICES,
    SEARCH_MAX_LENGTH,
    SIZE_ORDER,
    SORTS,
    TREE_CACHE_KEY,
    CatalogError,
    CategoryInfo,
    CategoryNotFound,
    CategoryTree,
    DemoSeedResult,
    Facet,
    FacetValue,
    ImageInfo,
    ListingFacets,
    ListingQuery,
    OutOfStock,
    PageOutOfRange,
    ProductCard,
    ProductDetail,
    ProductListing,
    ProductNotFound,
    ReservationInfo,
    ReservationNotFound,
    ReservedLine,
    StockBelowReserved,
    StockLevel,
    Suggestion,
    UnknownSku,
    VariantInfo,
    ordered_options,
)
from catalog.demo import demo_catalog_seed
from catalog.detail import product_detail, sitemap_products, variants_get
from catalog.listing import listing_facets, product_listing, product_suggest, products_featured, products_newest
from catalog.projection import images_render, option_key, refresh_products
from catalog.stock import (
    ReservationStatus,
    reservations_expire,
    stock_commit,
    stock_release,
    stock_reserve,
    stock_restock,
    stock_return,
    stock_sell,
    stock_set,
)

__all__ = [
    "DEFAULT_PER_PAGE",
    "MAX_OPTION_FILTERS",
    "OPTION_ORDER",
    "PER_PAGE_CHOICES",
    "SEARCH_MAX_LENGTH",
    "SIZE_ORDER",
    "SORTS",
    "TREE_CACHE_KEY",
    "CatalogError",
    "CategoryInfo",
    "CategoryNotFound",
    "CategoryTree",
    "DemoSeedResult",
    "Facet",
    "FacetValue",
    "ImageInfo",
    "ListingFacets",
    "ListingQuery",
    "OutOfStock",
    "PageOutOfRange",
    "ProductCard",
    "ProductDetail",
    "ProductListing",
    "ProductNotFound",
    "ReservationInfo",
    "ReservationNotFound",
    "ReservationStatus",
    "ReservedLine",
    "StockBelowReserved",
    "StockLevel",
    "Suggestion",
    "UnknownSku",
    "VariantInfo",
    "categories_changed",
    "category_tree",
    "demo_catalog_seed",
    "images_render",
    "listing_facets",
    "option_key",
    "ordered_options",
    "product_detail",
    "product_listing",
    "product_suggest",
    "products_featured",
    "products_newest",
    "refresh_products",
    "reservations_expire",
    "sitemap_products",
    "stock_commit",
    "stock_release",
    "stock_reserve",
    "stock_restock",
    "stock_return",
    "stock_sell",
    "stock_set",
    "variants_get",
]
