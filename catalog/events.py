"""Domain events of catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ProductChanged(DomainEvent):
    """A product's data, prices, stock or images changed. listing_changed: what listings show changed too."""

    name: ClassVar[str] = "catalog.product.changed.v1"
    product_id: int
    slug: str
    listing_changed: bool


@dataclass(frozen=True, kw_only=True)
class StockChanged(DomainEvent):
    """The stock available to sell of one variant changed."""

    name: ClassVar[str] = "catalog.stock.changed.v1"
    variant_id: int
    sku: str
    product_id: int
    product_slug: str
    available: int
    available_before: int | None = None  # None: not known (older publishers); consumers treat it as "changed"


@dataclass(frozen=True, kw_only=True)
class CategoriesChanged(DomainEvent):
    """The category tree changed (a category added, renamed, moved or hidden)."""

    name: ClassVar[str] = "catalog.categories.changed.v1"
    category_id: int
