"""Public face of catalog: the functions other modules may call.

Keyword-only arguments; plain values and frozen dataclasses in and out, never models or querysets.
Reads: category_tree, product_listing (category pages and search, with facets), product_detail, product_suggest,
products_featured, products_newest, variants_get, sitemap_products.
Writes: refresh_products (recompute what listings show and publish catalog.product.changed.v1), stock_set,
categories_changed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from catalog import search as _search
from catalog.events import CategoriesChanged, ProductChanged, StockChanged
from catalog.images import make_renditions
from catalog.models import (
    Category,
    Product,
    ProductImage,
    ProductOptionValue,
    Reservation,
    ReservationLine,
    StockItem,
    Variant,
)
from kernel.bus import publish
from kernel.db import unique

logger = logging.getLogger(__name__)

PER_PAGE_CHOICES = (12, 24, 48)
DEFAULT_PER_PAGE = 24
SORTS = {
    "relevance": "Relevance",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "newest": "Newest",
}
MAX_OPTION_FILTERS = 3
SEARCH_MAX_LENGTH = 200
TREE_CACHE_KEY = "catalog:category-tree:v1"
SIZE_ORDER = ["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL"]
# Variant options are a JSON object, whose key order PostgreSQL does not keep: names are shown in this order.
OPTION_ORDER = ["colour", "color", "size", "eu size", "waist", "length", "diameter", "capacity", "storage"]


def ordered_options(options: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    def rank(name: str) -> tuple[int, str]:
        lowered = name.lower()
        return (OPTION_ORDER.index(lowered) if lowered in OPTION_ORDER else len(OPTION_ORDER), lowered)

    return tuple((str(k), str(v)) for k, v in sorted((options or {}).items(), key=lambda kv: rank(str(kv[0]))))


# ---------------------------------------------------------------- errors


class CatalogError(Exception):
    """Base of the exceptions catalog raises."""


class CategoryNotFound(CatalogError):
    pass


class ProductNotFound(CatalogError):
    pass


class PageOutOfRange(CatalogError):
    """The page number is past the last page (or below 1)."""


class UnknownSku(CatalogError):
    pass


class StockBelowReserved(CatalogError):
    """On-hand stock cannot go below what is reserved for orders in progress."""


class OutOfStock(CatalogError):
    """Not enough of a variant left to reserve. .sku, .requested and .available say what and how much."""

    def __init__(self, sku: str, title: str, requested: int, available: int) -> None:
        self.sku, self.title, self.requested, self.available = sku, title, requested, available
        if available > 0:
            text = f"Only {available} of {title} left; you asked for {requested}."
        else:
            text = f"{title} has just sold out."
        super().__init__(text)


class ReservationNotFound(CatalogError):
    pass


# ---------------------------------------------------------------- categories


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    name: str
    slug: str
    parent_id: int | None
    depth: int
    description: str

    @property
    def url(self) -> str:
        return reverse("shop:category", args=[self.slug])


@dataclass(frozen=True)
class CategoryTree:
    """Every active category, parents before children, with lookups."""

    categories: tuple[CategoryInfo, ...]
    _by_id: dict[int, CategoryInfo] = field(init=False, repr=False, compare=False)
    _by_slug: dict[str, CategoryInfo] = field(init=False, repr=False, compare=False)
    _children: dict[int | None, tuple[CategoryInfo, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[int | None, list[CategoryInfo]] = defaultdict(list)
        for c in self.categories:
            children[c.parent_id].append(c)
        object.__setattr__(self, "_by_id", {c.id: c for c in self.categories})
        object.__setattr__(self, "_by_slug", {c.slug: c for c in self.categories})
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    def get(self, *, slug: str) -> CategoryInfo:
        try:
            return self._by_slug[slug]
        except KeyError:
            raise CategoryNotFound(slug) from None

    def by_id(self, category_id: int) -> CategoryInfo | None:
        return self._by_id.get(category_id)

    def roots(self) -> tuple[CategoryInfo, ...]:
        return self._children.get(None, ())

    def children(self, category_id: int) -> tuple[CategoryInfo, ...]:
        return self._children.get(category_id, ())

    def ancestors(self, category_id: int) -> tuple[CategoryInfo, ...]:
        """From the root down to the category itself."""
        path = []
        node = self._by_id.get(category_id)
        while node is not None:
            path.append(node)
            node = self._by_id.get(node.parent_id) if node.parent_id is not None else None
        return tuple(reversed(path))

    def descendant_ids(self, category_id: int) -> tuple[int, ...]:
        """The category and everything below it."""
        found, stack = [], [category_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(c.id for c in self._children.get(current, ()))
        return tuple(found)


def category_tree() -> CategoryTree:
    try:
        tree = cache.get(TREE_CACHE_KEY)
    except Exception:  # cache unreachable: read the database instead of failing the page
        logger.warning("cache unavailable; reading the category tree from the database", exc_info=True)
        tree = None
    if tree is None:
        rows = Category.objects.filter(is_active=True).values_list(
            "id", "name", "slug", "parent_id", "description", "position"
        )
        by_parent: dict[int | None, list[tuple]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: (r[5], r[1])):
            by_parent[row[3]].append(row)
        ordered: list[CategoryInfo] = []

        def walk(parent: int | None, depth: int) -> None:
            for cid, name, slug, parent_id, description, _ in by_parent.get(parent, []):
                ordered.append(CategoryInfo(cid, name, slug, parent_id, depth, description))
                walk(cid, depth + 1)

        walk(None, 0)  # a category under an inactive parent is hidden with it
        tree = CategoryTree(tuple(ordered))
        with contextlib.suppress(Exception):
            cache.set(TREE_CACHE_KEY, tree, timeout=60 * 60)
    return tree


def categories_changed(*, category_id: int) -> None:
    """Call after any change to categories: refreshes the cached tree and tells the rest of the shop."""
    transaction.on_commit(lambda: cache.delete(TREE_CACHE_KEY))
    cache.delete(TREE_CACHE_KEY)
    publish(CategoriesChanged(category_id=category_id))


# ---------------------------------------------------------------- listings


@dataclass(frozen=True)
class ListingQuery:
    """What a shopper asked a listing for. Every value is validated by the caller (shop's forms)."""

    sort: str = "relevance"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    brands: tuple[str, ...] = ()  # brand slugs
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool = False
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (option key, accepted values)

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}")
        if self.per_page not in PER_PAGE_CHOICES:
            raise ValueError(f"per_page must be one of {PER_PAGE_CHOICES}")
        if len(self.options) > MAX_OPTION_FILTERS:
            raise ValueError(f"at most {MAX_OPTION_FILTERS} option filters")

    @property
    def filter_key(self) -> str:
        """What the facets depend on: the filters, not the sort or the page."""
        return repr((self.brands, self.price_min, self.price_max, self.in_stock, self.options))


@dataclass(frozen=True)
class ProductCard:
    id: int
    title: str
    slug: str
    brand: str
    price_min: Decimal | None
    price_max: Decimal | None
    compare_at_price: Decimal | None
    currency: str
    in_stock: bool
    image_url: str
    image_alt: str

    @property
    def url(self) -> str:
        return reverse("shop:product", args=[self.slug])

    @property
    def on_sale(self) -> bool:
        return bool(self.compare_at_price and self.price_min is not None and self.compare_at_price > self.price_min)

    @property
    def price_varies(self) -> bool:
        return self.price_min is not None and self.price_max is not None and self.price_max > self.price_min


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass(frozen=True)
class Facet:
    key: str  # query parameter: "brand", or "o_<option key>"
    label: str
    values: tuple[FacetValue, ...]


@dataclass(frozen=True)
class ListingFacets:
    """The facet counts and totals of a listing: the same for every sort and page of it."""

    total: int
    facets: tuple[Facet, ...]
    in_stock_count: int
    price_floor: Decimal | None
    price_ceiling: Decimal | None


@dataclass(frozen=True)
class ProductListing:
    items: tuple[ProductCard, ...]
    total: int
    page: int
    per_page: int
    num_pages: int
    sort: str
    facets: tuple[Facet, ...]
    in_stock_count: int
    price_floor: Decimal | None
    price_ceiling: Decimal | None

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages


_CARD_FIELDS = (
    "id",
    "title",
    "slug",
    "brand_name",
    "min_price",
    "max_price",
    "compare_at_price",
    "currency",
    "in_stock",
    "listing_image",
    "listing_image_alt",
)


def _media_url(name: str) -> str:
    return default_storage.url(name) if name else ""


def _card(row: dict[str, Any]) -> ProductCard:
    return ProductCard(
        id=row["id"],
        title=row["title"],
        slug=row["slug"],
        brand=row["brand_name"],
        price_min=row["min_price"],
        price_max=row["max_price"],
        compare_at_price=row["compare_at_price"],
        currency=row["currency"],
        in_stock=row["in_stock"],
        image_url=_media_url(row["listing_image"]),
        image_alt=row["listing_image_alt"] or row["title"],
    )


def _value_order(value: str) -> tuple:
    if value in SIZE_ORDER:
        return (0, SIZE_ORDER.index(value), "")
    number = re.fullmatch(r"(\d+(?:\.\d+)?)\s*\w*", value)
    if number:
        return (1, float(number.group(1)), value)
    return (2, 0, value.lower())


def _and(*conditions: Q) -> Q:
    combined = Q()
    for condition in conditions:
        combined &= condition
    return combined


def _count(condition: Q) -> Count:
    return Count("id", filter=condition) if condition else Count("id")


@dataclass(frozen=True)
class _Filters:
    base: Any
    brand: Q
    price: Q
    stock: Q
    options: dict[str, Q]

    def options_except(self, skip: str | None = None) -> Q:
        return _and(*(q for key, q in self.options.items() if key != skip))

    def matching(self) -> Any:
        return self.base.filter(self.brand, self.price, self.stock, self.options_except())


def _filters(query: ListingQuery, category_id: int | None, text: str | None) -> _Filters:
    base = Product.objects.filter(is_active=True)
    if category_id is not None:
        base = base.filter(category_id__in=category_tree().descendant_ids(category_id))
    if text:
        base = base.filter(_search.condition(text[:SEARCH_MAX_LENGTH]))
    price = Q()
    if query.price_min is not None:
        price &= Q(min_price__gte=query.price_min)
    if query.price_max is not None:
        price &= Q(min_price__lte=query.price_max)
    return _Filters(
        base=base,
        brand=Q(brand__slug__in=query.brands) if query.brands else Q(),
        price=price,
        stock=Q(in_stock=True) if query.in_stock else Q(),
        options={
            key: Q(Exists(ProductOptionValue.objects.filter(product_id=OuterRef("pk"), key=key, value__in=values)))
            for key, values in query.options
        },
    )


def listing_facets(*, query: ListingQuery, category_id: int | None = None, text: str | None = None) -> ListingFacets:
    """Totals and facet counts of a category (with its subcategories) or of search results, for these filters.

    Each facet is counted with every filter but its own, so a shopper sees what choosing another value would give.
    3 queries, plus one per option filtered on. Sort and page do not change the result: callers may cache it.
    """
    f = _filters(query, category_id, text)
    all_options = f.options_except()

    # 1. totals: matching products, how many are in stock, the price span (each ignoring its own filter)
    totals = f.base.filter(f.brand, all_options).aggregate(
        n_total=_count(f.price & f.stock),
        n_in_stock=_count(f.price & Q(in_stock=True)),
        price_floor=Min("min_price", filter=f.stock) if f.stock else Min("min_price"),
        price_ceiling=Max("min_price", filter=f.stock) if f.stock else Max("min_price"),
    )

    # 2. brand facet, counted with every filter but the brand's
    selected_brands = set(query.brands)
    brand_rows = (
        f.base.filter(all_options, f.price, f.stock)
        .exclude(brand=None)
        .values("brand__slug", "brand_name")
        .annotate(n=Count("id"))
        .order_by("brand_name")
    )
    facets = [
        Facet(
            "brand",
            "Brand",
            tuple(
                FacetValue(r["brand__slug"], r["brand_name"], r["n"], r["brand__slug"] in selected_brands)
                for r in brand_rows
            ),
        )
    ]

    # 3. option facets: one query for the options nobody filtered on, one per option filtered on
    selected_options = dict(query.options)
    option_rows: list[dict[str, Any]] = list(
        ProductOptionValue.objects.filter(product__in=f.matching().values("pk"))
        .exclude(key__in=list(selected_options))
        .values("key", "name", "value")
        .annotate(n=Count("product_id"))
    )
    for key in selected_options:
        others = f.base.filter(f.brand, f.price, f.stock, f.options_except(key))
        option_rows += list(
            ProductOptionValue.objects.filter(key=key, product__in=others.values("pk"))
            .values("key", "name", "value")
            .annotate(n=Count("product_id"))
        )
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in option_rows:
        by_key[row["key"]].append(row)
    for key in sorted(by_key):
        rows = sorted(by_key[key], key=lambda r: _value_order(r["value"]))
        chosen = set(selected_options.get(key, ()))
        values = tuple(FacetValue(r["value"], r["value"], r["n"], r["value"] in chosen) for r in rows)
        facets.append(Facet(f"o_{key}", rows[0]["name"], values))

    return ListingFacets(
        total=totals["n_total"],
        facets=tuple(facet for facet in facets if facet.values),
        in_stock_count=totals["n_in_stock"],
        price_floor=totals["price_floor"],
        price_ceiling=totals["price_ceiling"],
    )


def product_listing(
    *,
    query: ListingQuery,
    category_id: int | None = None,
    text: str | None = None,
    facets: ListingFacets | None = None,
) -> ProductListing:
    """One page of a category (with its subcategories) or of search results, with its facets.

    Pass `facets` (from listing_facets with the same filters) to reuse counts computed for another sort or page.
    Runs a fixed number of SQL queries whatever per_page is. Raises PageOutOfRange.
    """
    if facets is None:
        facets = listing_facets(query=query, category_id=category_id, text=text)
    num_pages = max(1, math.ceil(facets.total / query.per_page))
    if not 1 <= query.page <= num_pages:
        raise PageOutOfRange(query.page)

    matching = _filters(query, category_id, text).matching()
    if query.sort == "price_asc":
        ordering: tuple[Any, ...] = ("min_price", "id")
    elif query.sort == "price_desc":
        ordering = ("-min_price", "id")
    elif query.sort == "newest":
        ordering = ("-published_at", "-id")
    elif text:
        matching = matching.annotate(relevance=_search.rank(text[:SEARCH_MAX_LENGTH]))
        ordering = ("-relevance", "-popularity", "id")
    else:
        ordering = ("-is_featured", "-popularity", "id")
    start = (query.page - 1) * query.per_page
    rows = matching.order_by(*ordering).values(*_CARD_FIELDS)[start : start + query.per_page]

    return ProductListing(
        items=tuple(_card(r) for r in rows),
        total=facets.total,
        page=query.page,
        per_page=query.per_page,
        num_pages=num_pages,
        sort=query.sort,
        facets=facets.facets,
        in_stock_count=facets.in_stock_count,
        price_floor=facets.price_floor,
        price_ceiling=facets.price_ceiling,
    )


def products_featured(*, limit: int = 8) -> tuple[ProductCard, ...]:
    rows = Product.objects.filter(is_active=True, is_featured=True).order_by("-popularity", "id")
    return tuple(_card(r) for r in rows.values(*_CARD_FIELDS)[:limit])


def products_newest(*, limit: int = 8) -> tuple[ProductCard, ...]:
    rows = Product.objects.filter(is_active=True).order_by("-published_at", "-id")
    return tuple(_card(r) for r in rows.values(*_CARD_FIELDS)[:limit])


@dataclass(frozen=True)
class Suggestion:
    title: str
    url: str
    kind: str  # "product" or "category"


def product_suggest(*, text: str, limit: int = 8) -> tuple[Suggestion, ...]:
    """Autocomplete: categories whose name contains the text, then the best-matching product titles."""
    text = text.strip()[:SEARCH_MAX_LENGTH]
    if len(text) < 2:
        return ()
    lowered = text.lower()
    found = [Suggestion(c.name, c.url, "category") for c in category_tree().categories if lowered in c.name.lower()][:3]
    rows = (
        Product.objects.filter(is_active=True)
        .filter(_search.suggest_condition(text))
        .annotate(score=_search.suggest_rank(text))
        .order_by("-score", "-popularity", "id")
        .values_list("title", "slug")[: limit - len(found)]
    )
    found += [Suggestion(title, reverse("shop:product", args=[slug]), "product") for title, slug in rows]
    return tuple(found)


# ---------------------------------------------------------------- product page


@dataclass(frozen=True)
class VariantInfo:
    id: int
    product_id: int
    product_title: str
    product_slug: str
    image_url: str
    sku: str
    options: tuple[tuple[str, str], ...]
    price: Decimal
    compare_at_price: Decimal | None
    currency: str
    available: int
    is_active: bool

    @property
    def in_stock(self) -> bool:
        return self.is_active and self.available > 0

    @property
    def label(self) -> str:
        return " / ".join(value for _, value in self.options) or self.sku

    @property
    def product_url(self) -> str:
        return reverse("shop:product", args=[self.product_slug]) + f"?variant={self.id}"


@dataclass(frozen=True)
class ImageInfo:
    url: str
    large_url: str
    listing_url: str
    alt: str


@dataclass(frozen=True)
class ProductDetail:
    id: int
    title: str
    slug: str
    brand: str
    description: str
    attributes: tuple[tuple[str, str], ...]
    category_id: int
    variants: tuple[VariantInfo, ...]
    images: tuple[ImageInfo, ...]
    price_min: Decimal | None
    price_max: Decimal | None
    currency: str
    in_stock: bool
    updated_at: datetime

    @property
    def url(self) -> str:
        return reverse("shop:product", args=[self.slug])

    @property
    def option_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for variant in self.variants:
            for name, _ in variant.options:
                if name not in names:
                    names.append(name)
        return tuple(names)


def _variant_info(v: Variant) -> VariantInfo:
    stock = getattr(v, "stock", None)
    available = stock.available if stock is not None else 0
    return VariantInfo(
        id=v.pk,
        product_id=v.product_id,
        product_title=v.product.title,
        product_slug=v.product.slug,
        image_url=_media_url(v.product.listing_image),
        sku=v.sku,
        options=ordered_options(v.options),
        price=v.price,
        compare_at_price=v.compare_at_price,
        currency=v.currency,
        available=max(available, 0),
        is_active=v.is_active,
    )


def product_detail(*, slug: str) -> ProductDetail:
    """Everything the product page shows, in three queries. Raises ProductNotFound."""
    product = unique(Product.objects.filter(slug=slug, is_active=True))
    if product is None:
        raise ProductNotFound(slug)
    variants = Variant.objects.filter(product_id=product.pk, is_active=True).select_related("stock", "product")
    images = ProductImage.objects.filter(product_id=product.pk)
    return ProductDetail(
        id=product.pk,
        title=product.title,
        slug=product.slug,
        brand=product.brand_name,
        description=product.description,
        attributes=tuple((str(k), str(v)) for k, v in (product.attributes or {}).items()),
        category_id=product.category_id,
        variants=tuple(_variant_info(v) for v in variants),
        images=tuple(
            ImageInfo(
                url=_media_url(i.image.name),
                large_url=_media_url(i.large or i.image.name),
                listing_url=_media_url(i.listing or i.image.name),
                alt=i.alt_text,
            )
            for i in images
        ),
        price_min=product.min_price,
        price_max=product.max_price,
        currency=product.currency,
        in_stock=product.in_stock,
        updated_at=product.updated_at,
    )


def variants_get(*, variant_ids: Iterable[int]) -> dict[int, VariantInfo]:
    """Current price and availability of these variants (missing ids are left out). One query."""
    rows = (
        Variant.objects.filter(pk__in=list(variant_ids), product__is_active=True)
        .order_by()
        .values_list(
            "pk", "product_id", "product__title", "product__slug", "product__listing_image", "sku", "options", "price",
            "compare_at_price", "currency", "stock__on_hand", "stock__reserved", "is_active",
        )
    )  # fmt: skip
    # The cart, the checkout and every order ask this: only the columns needed, and no model instances.
    found = {}
    for row in rows:
        pk, product_id, title, slug, image, sku, options, price, compare_at, currency, on_hand, reserved, active = row
        available = on_hand - reserved if on_hand is not None else 0
        found[pk] = VariantInfo(
            id=pk, product_id=product_id, product_title=title, product_slug=slug, image_url=_media_url(image), sku=sku,
            options=ordered_options(options), price=price, compare_at_price=compare_at, currency=currency,
            available=max(available, 0), is_active=active,
        )  # fmt: skip
    return found


def sitemap_products() -> list[tuple[str, datetime]]:
    """(slug, last modified) of every product on sale."""
    return list(Product.objects.filter(is_active=True).order_by("id").values_list("slug", "updated_at"))


# ---------------------------------------------------------------- writes


def option_key(name: str) -> str:
    return slugify(name) or "option"


def _listing_fields(product: Product) -> tuple:
    return (
        product.brand_name,
        product.min_price,
        product.max_price,
        product.compare_at_price,
        product.in_stock,
        product.listing_image,
        product.listing_image_alt,
    )


@transaction.atomic
def refresh_products(
    *, product_ids: Iterable[int], publish_events: bool = True, listing_changed: bool | None = None
) -> int:
    """Recompute what listings show of these products (prices, stock flag, image, brand, option values, search
    vector) from their variants, stock and images, and publish catalog.product.changed.v1 for each.

    listing_changed=True says the caller changed what listings show itself (a title edited in the admin); by
    default it is worked out from the recomputed fields. publish_events=False is for bulk imports, which publish
    one CategoriesChanged at the end instead.
    Returns how many products were refreshed.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return 0
    products = {p.pk: p for p in Product.objects.select_related("brand").filter(pk__in=ids)}
    before = {pk: _listing_fields(p) for pk, p in products.items()}
    variants: dict[int, list[Variant]] = defaultdict(list)
    for v in Variant.objects.filter(product_id__in=ids, is_active=True).select_related("stock"):
        variants[v.product_id].append(v)
    first_image: dict[int, ProductImage] = {}
    for image in ProductImage.objects.filter(product_id__in=ids).order_by("product_id", "position", "id"):
        first_image.setdefault(image.product_id, image)

    # every variant has a stock row (new variants from the admin start at zero)
    StockItem.objects.bulk_create(
        [StockItem(variant_id=v.pk) for own in variants.values() for v in own if not hasattr(v, "stock")],
        ignore_conflicts=True,
    )
    options: list[ProductOptionValue] = []
    for pk, product in products.items():
        own = variants.get(pk, [])
        prices = [v.price for v in own]
        product.brand_name = product.brand.name if product.brand else ""
        product.min_price = min(prices) if prices else None
        product.max_price = max(prices) if prices else None
        compare = [v.compare_at_price for v in own if v.compare_at_price]
        product.compare_at_price = max(compare) if compare else None
        product.currency = own[0].currency if own else settings.SHOP_CURRENCY
        product.in_stock = any(getattr(v, "stock", None) is not None and v.stock.available > 0 for v in own)
        image = first_image.get(pk)
        product.listing_image = (image.listing or image.image.name) if image else ""
        product.listing_image_alt = image.alt_text if image else ""
        seen: set[tuple[str, str]] = set()
        for v in own:
            for name, value in (v.options or {}).items():
                pair = (option_key(str(name)), str(value))
                if pair not in seen:
                    seen.add(pair)
                    options.append(ProductOptionValue(product_id=pk, key=pair[0], name=str(name), value=pair[1]))

    Product.objects.bulk_update(
        products.values(),
        [
            "brand_name",
            "min_price",
            "max_price",
            "compare_at_price",
            "currency",
            "in_stock",
            "listing_image",
            "listing_image_alt",
        ],
        batch_size=500,
    )
    ProductOptionValue.objects.filter(product_id__in=ids).delete()
    ProductOptionValue.objects.bulk_create(options, batch_size=2000)
    _search.update_vectors(Product, ids)
    if publish_events:
        for pk, product in products.items():
            changed = listing_changed if listing_changed is not None else before[pk] != _listing_fields(product)
            publish(ProductChanged(product_id=pk, slug=product.slug, listing_changed=changed))
    return len(products)


def images_render(*, product_id: int) -> int:
    """Make the listing and large renditions of a product's images that lack them; returns how many."""
    made = 0
    for image in ProductImage.objects.filter(product_id=product_id, listing=""):
        names = make_renditions(image.image.name)
        ProductImage.objects.filter(pk=image.pk).update(listing=names["listing"], large=names["large"])
        made += 1
    return made


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def stock_set(*, sku: str, on_hand: int) -> StockLevel:
    """Set the counted stock of a SKU (a stock-take or a delivery booked in). Raises UnknownSku,
    StockBelowReserved, or ValueError for a negative quantity."""
    if on_hand < 0:
        raise ValueError("on-hand stock cannot be negative")
    with transaction.atomic():
        variant = Variant.objects.filter(sku=sku).select_related("product").only("id", "sku", "product__slug").first()
        if variant is None:
            raise UnknownSku(sku)
        stock, _ = StockItem.objects.select_for_update().get_or_create(variant_id=variant.pk)
        if on_hand < stock.reserved:
            raise StockBelowReserved(f"{sku}: {stock.reserved} are reserved for orders in progress")
        was_available = stock.available
        stock.on_hand = on_hand
        stock.save(update_fields=["on_hand"])
        if stock.available != was_available:
            publish(
                StockChanged(
                    variant_id=variant.pk,
                    sku=sku,
                    product_id=variant.product_id,
                    product_slug=variant.product.slug,
                    available=stock.available,
                    available_before=was_available,
                )
            )
            refresh_products(product_ids=[variant.product_id])
    return StockLevel(sku=sku, on_hand=stock.on_hand, reserved=stock.reserved)


# ---------------------------------------------------------------- demo data


@dataclass(frozen=True)
class DemoSeedResult:
    created: int
    existing: int
    categories: int
    brands: int


def demo_catalog_seed(*, products: int, seed: int = 1, progress: Callable[[int], None] | None = None) -> DemoSeedResult:
    """Make sure the demo catalog has products 0 .. products-1 of this seed (idempotent, deterministic).

    progress(n) is called after each batch of n products. Publishes one catalog.categories.changed.v1 at the end.
    """
    from catalog import demo

    result = demo.seed(products=products, seed=seed, progress=progress)
    if result.created:
        root = Category.objects.filter(parent=None).order_by("pk").values_list("pk", flat=True).first()
        categories_changed(category_id=root or 0)
    return DemoSeedResult(result.created, result.existing, result.categories, result.brands)


# ---------------------------------------------------------------- reservations


ReservationStatus = Reservation.Status  # held, committed (sold), released: compare against these, never strings


@dataclass(frozen=True)
class ReservedLine:
    variant_id: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReservationInfo:
    key: str
    status: str
    expires_at: datetime
    lines: tuple[ReservedLine, ...]


def _reservation_info(reservation: Reservation, lines: Iterable[ReservationLine] | None = None) -> ReservationInfo:
    """lines, if given, must come with their variant (select_related); otherwise they are read."""
    if lines is None:
        lines = reservation.lines.select_related("variant").order_by("variant_id")
    reserved = tuple(ReservedLine(line.variant_id, line.variant.sku, line.quantity) for line in lines)
    return ReservationInfo(reservation.key, reservation.status, reservation.expires_at, reserved)


def _publish_stock(changes: dict[int, int]) -> None:
    """Tell the shop about stock that changed ({variant_id: change in available}), and refresh the listings of
    products whose availability flipped."""
    rows = list(
        StockItem.objects.filter(variant_id__in=list(changes)).values_list(
            "variant_id", "variant__sku", "variant__product_id", "variant__product__slug", "on_hand", "reserved",
            "variant__product__in_stock",
        )
    )  # fmt: skip
    _announce_stock(
        (variant_id, sku, product_id, slug, on_hand - reserved, on_hand - reserved - changes[variant_id], in_stock)
        for variant_id, sku, product_id, slug, on_hand, reserved, in_stock in rows
    )


def _announce_stock(levels: Iterable[tuple[int, str, int, str, int, int, bool]]) -> None:
    """Publish StockChanged for (variant_id, sku, product_id, slug, available, available before, product in stock)
    and refresh the listing fields of products whose in-stock flag no longer holds."""
    flipped = set()
    for variant_id, sku, product_id, slug, available, before, product_in_stock in levels:
        publish(
            StockChanged(variant_id=variant_id, sku=sku, product_id=product_id, product_slug=slug, available=available,
                         available_before=before)
        )  # fmt: skip
        if (available > 0) != product_in_stock:
            flipped.add(product_id)
    if flipped:
        refresh_products(product_ids=flipped)


def _hold(variant_id: int, quantity: int) -> int | None:
    """Reserve quantity of one variant if that many are available; returns what is available afterwards, or None.

    The condition must stay on the stock row itself (no join, no subquery): PostgreSQL re-checks it on the row's
    latest version after waiting for a concurrent buyer's lock, so two buyers cannot both pass it. RETURNING saves
    reading the level back (PostgreSQL, and SQLite >= 3.35).
    """
    connection = connections[router.db_for_write(StockItem)]
    quote = connection.ops.quote_name
    table, on_hand, reserved, variant = (
        quote(StockItem._meta.db_table), quote("on_hand"), quote("reserved"), quote("variant_id")
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {reserved} = {reserved} + %s WHERE {variant} = %s AND {on_hand} >= {reserved} + %s "  # noqa: S608
            f"RETURNING {on_hand} - {reserved}",
            [quantity, variant_id, quantity],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def stock_reserve(*, key: str, lines: Iterable[tuple[int, int]], ttl_seconds: int = 900) -> ReservationInfo:
    """Hold stock for (variant_id, quantity) lines until committed, released or expired.

    Each line is a conditional update (available >= quantity) taken in variant-id order, so two buyers never
    deadlock and stock never goes below zero (the database checks it as well). All lines or none: raises
    OutOfStock for the first that cannot be held. Idempotent: the same key returns the reservation made first
    (the unique key refuses a second one, even at the same moment).
    """
    wanted: dict[int, int] = defaultdict(int)
    for variant_id, quantity in lines:
        if quantity < 1:
            raise ValueError("quantities must be at least 1")
        wanted[int(variant_id)] += int(quantity)
    if not wanted:
        raise ValueError("nothing to reserve")
    try:
        with transaction.atomic():
            reservation = Reservation.objects.create(
                key=key, expires_at=timezone.now() + timedelta(seconds=ttl_seconds)
            )
            on_sale = {
                row[0]: row[1:]
                for row in Variant.objects.filter(pk__in=wanted, is_active=True, product__is_active=True).values_list(
                    "pk", "sku", "product_id", "product__slug", "product__in_stock"
                )
            }  # fmt: skip
            levels = []
            for variant_id in sorted(wanted):
                quantity = wanted[variant_id]
                available = _hold(variant_id, quantity) if variant_id in on_sale else None
                if available is None:
                    variant = Variant.objects.select_related("product", "stock").filter(pk=variant_id).first()
                    if variant is None:
                        raise OutOfStock(str(variant_id), "This product", quantity, 0)
                    stock = getattr(variant, "stock", None)
                    available = max(stock.available, 0) if stock and variant_id in on_sale else 0
                    raise OutOfStock(variant.sku, variant.product.title, quantity, available)
                sku, product_id, slug, in_stock = on_sale[variant_id]
                levels.append((variant_id, sku, product_id, slug, available, available + quantity, in_stock))
            ReservationLine.objects.bulk_create(
                [ReservationLine(reservation=reservation, variant_id=v, quantity=q) for v, q in sorted(wanted.items())]
            )
            _announce_stock(levels)
    except IntegrityError:  # this key was reserved before (or at the same moment): the first one stands
        existing = unique(Reservation.objects.filter(key=key))
        if existing is None:
            raise
        return _reservation_info(existing)
    held = tuple(ReservedLine(variant_id, sku, wanted[variant_id]) for variant_id, sku, *_ in levels)
    return ReservationInfo(reservation.key, reservation.status, reservation.expires_at, held)


def _settle(key: str, to_status: str) -> ReservationInfo:
    """Take a held reservation to to_status and move its stock; a reservation no longer held is left as it is.

    The conditional UPDATE is the lock: a concurrent settle of the same key waits for it, then finds the
    reservation no longer held and changes nothing.
    """
    connection = connections[router.db_for_write(Reservation)]
    quote = connection.ops.quote_name
    # No savepoint: inside an order's transaction this is one more step of it, and any error undoes both.
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(Reservation._meta.db_table)} SET {quote('status')} = %s "  # noqa: S608
                f"WHERE {quote('key')} = %s AND {quote('status')} = %s RETURNING {quote('id')}, {quote('expires_at')}",
                [to_status, key, Reservation.Status.HELD],
            )
            settled = cursor.fetchone()
        if settled is not None:
            reservation_id, expires_at = settled
            status = str(to_status)
            lines = list(
                ReservationLine.objects.filter(reservation_id=reservation_id)
                .order_by("variant_id")
                .values_list("variant_id", "variant__sku", "quantity")
            )
            for variant_id, _, quantity in lines:
                change = {"reserved": F("reserved") - quantity}
                if to_status == Reservation.Status.COMMITTED:
                    change["on_hand"] = F("on_hand") - quantity
                StockItem.objects.filter(variant_id=variant_id).update(**change)
            if to_status == Reservation.Status.RELEASED:
                _publish_stock({variant_id: quantity for variant_id, _, quantity in lines})
    if settled is None:  # not held (any more): report it as it stands, or raise outside the block
        reservation = unique(Reservation.objects.filter(key=key))
        if reservation is None:
            raise ReservationNotFound(key)
        return _reservation_info(reservation)
    if isinstance(expires_at, str):  # SQLite gives RETURNING columns as stored (in UTC), without Django's converters
        expires_at = parse_datetime(expires_at)
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    return ReservationInfo(key, status, expires_at, tuple(ReservedLine(v, sku, q) for v, sku, q in lines))


def stock_commit(*, key: str) -> ReservationInfo:
    """The order is paid: held stock becomes a sale (on hand and reserved both go down). Idempotent."""
    return _settle(key, Reservation.Status.COMMITTED)


def stock_release(*, key: str) -> ReservationInfo:
    """The order will not happen: held stock is free again. Idempotent; a sold reservation is left as it is."""
    return _settle(key, Reservation.Status.RELEASED)


def stock_restock(*, key: str) -> ReservationInfo:
    """The order is cancelled: held stock is released, sold stock returns to on-hand. Idempotent."""
    with transaction.atomic():
        reservation = unique(Reservation.objects.select_for_update().filter(key=key))
        if reservation is None:
            raise ReservationNotFound(key)
        if reservation.status != Reservation.Status.COMMITTED:
            sold = False
        else:
            sold = True
            lines = list(reservation.lines.order_by("variant_id"))
            for line in lines:
                StockItem.objects.filter(variant_id=line.variant_id).update(on_hand=F("on_hand") + line.quantity)
            reservation.status = Reservation.Status.RELEASED
            reservation.save(update_fields=["status"])
            _publish_stock({line.variant_id: line.quantity for line in lines})
    return _reservation_info(reservation) if sold else stock_release(key=key)


def reservations_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Release held reservations past their time (the periodic task). Returns how many."""
    now = now or timezone.now()
    keys = list(
        Reservation.objects.filter(status=Reservation.Status.HELD, expires_at__lt=now).values_list("key", flat=True)[
            :limit
        ]
    )
    for key in keys:
        stock_release(key=key)
    return len(keys)
