"""Domain events of catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kernel.events import Command, DomainEvent


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


# ---------------------------------------------------------------- commands and their answers (the purchase saga)


@dataclass(frozen=True, kw_only=True)
class CommitReservation(Command):
    """The order is paid: sell the stock held under `key`. If the hold had lapsed, catalog takes the stock again;
    if it is gone, it answers ReservationFailed. `reference` is the requester's (an order number)."""

    name: ClassVar[str] = "catalog.reservation.commit.v1"
    key: str
    reference: str


@dataclass(frozen=True, kw_only=True)
class ReleaseReservation(Command):
    """The order will not go ahead: held stock is freed and sold stock goes back on hand."""

    name: ClassVar[str] = "catalog.reservation.release.v1"
    key: str
    reference: str


@dataclass(frozen=True, kw_only=True)
class ReturnToStock(Command):
    """Goods a customer returned, received in good condition: back on hand. `lines` are (variant id, quantity)
    pairs. Applied once per key."""

    name: ClassVar[str] = "catalog.stock.return.v1"
    key: str
    lines: tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class ReservationFailed(DomainEvent):
    """The stock of a paid order could not be sold: its hold had lapsed and the goods are gone."""

    name: ClassVar[str] = "catalog.reservation.failed.v1"
    key: str
    reference: str
    reason: str
