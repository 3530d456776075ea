"""What catalog hands out and raises: the public frozen dataclasses, the exceptions and the listing constants.

Private module of catalog; other modules import these names from catalog.services. No shop URL in here: the
dataclasses carry slugs and ids, and shop builds its own links from them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.utils.text import slugify

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
DID_YOU_MEAN_BELOW = 5  # a search finding fewer products than this suggests a spelling (ProductListing.did_you_mean)
TREE_CACHE_KEY = "catalog:category-tree:v2"  # v2: the pickle of the tree, as bytes
SIZE_ORDER = ["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL"]
# Variant options are a JSON object, whose key order PostgreSQL does not keep: names are shown in this order.
OPTION_ORDER = ["colour", "color", "size", "eu size", "waist", "length", "diameter", "capacity", "storage"]


# The option that picks a product's pictures (ProductImage.colour holds one of its values).
COLOUR_OPTIONS = ("colour", "color")
# Swatch colours of the colour names the shop uses; any other name gets a neutral swatch with its initial.
COLOUR_RGB = {
    "Black": (34, 34, 38),
    "White": (236, 236, 232),
    "Navy": (31, 45, 84),
    "Grey": (128, 132, 138),
    "Red": (190, 45, 45),
    "Forest": (46, 110, 70),
    "Sky": (80, 150, 210),
    "Sand": (214, 194, 158),
    "Olive": (112, 116, 62),
    "Rose": (222, 140, 160),
    "Mustard": (220, 170, 40),
    "Teal": (30, 128, 128),
    "Orange": (226, 118, 40),
    "Silver": (186, 188, 194),
}
_SWATCHES = {name.lower(): "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in COLOUR_RGB.items()}


def option_key(name: str) -> str:
    """An option's name as query parameters spell it: "EU size" -> "eu-size"."""
    return slugify(name) or "option"


def is_colour_option(name: str) -> bool:
    return name.strip().lower() in COLOUR_OPTIONS


def swatch(colour: str) -> str:
    """The CSS colour of a swatch for this colour name ("" when the shop does not know it)."""
    return _SWATCHES.get(colour.strip().lower(), "")


def colour_of(options: Any) -> str:
    """The value of the colour option of a variant's options (a dict or (name, value) pairs), "" for none."""
    pairs = options.items() if isinstance(options, dict) else (options or ())
    return next((str(value) for name, value in pairs if is_colour_option(str(name))), "")


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


class CatalogInvalid(CatalogError, ValueError):
    """A write was refused: .errors maps each argument at fault (by the service's argument name; inside a list, by
    the item's index) to what is wrong with it, e.g. {"slug": ["..."], "variants": {1: {"sku": ["..."]}}}."""

    def __init__(self, errors: dict[str, Any]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in errors.items()))


@dataclass(frozen=True)
class StockProblem:
    """One item of a bulk stock change that cannot be applied: its index in the request, and which field."""

    index: int
    sku: str
    field: str  # "sku" (unknown, or given twice) or "on_hand" (below what is reserved, or negative)
    message: str


class StockLevelsRefused(CatalogError, ValueError):
    """stock_set_many changed nothing: .problems lists every item at fault."""

    def __init__(self, problems: tuple[StockProblem, ...]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} stock levels refused: " + "; ".join(p.message for p in problems[:5]))


class Unset:
    """The type of UNSET, the value of an argument not given to an update service (None may be a value: no
    compare-at price)."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = Unset()


# ---------------------------------------------------------------- categories


@dataclass(frozen=True)
class CategoryInfo:
    id: int
    name: str
    slug: str
    parent_id: int | None
    depth: int
    description: str


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
    # products_cards only: the variant a one-click "Add" puts in the cart (the first active one in stock), or None
    add_variant_id: int | None = None

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
    did_you_mean: str = ""  # search only: the text with unknown words corrected, "" when there is none

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages


@dataclass(frozen=True)
class Suggestion:
    title: str
    slug: str  # the product's or the category's
    kind: str  # "product" or "category"


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


@dataclass(frozen=True)
class ImageInfo:
    url: str
    large_url: str
    listing_url: str
    alt: str
    colour: str = ""  # the colour it shows, "" for every colour


@dataclass(frozen=True)
class OptionGroup:
    """One option of a product's variants (Colour, Size) and its values, in the variants' order."""

    name: str
    key: str  # the option's query parameter on the product page: "colour", "eu-size"
    values: tuple[str, ...]
    is_colour: bool

    @property
    def single(self) -> bool:
        """One value only (every variant is Black): shown as text, not as a choice."""
        return len(self.values) == 1


@dataclass(frozen=True)
class OptionChoice:
    """One value of an option group as the product page offers it, given the variant chosen: whether a variant with
    this value and the values chosen in the groups before it exists, and whether one of those is in stock."""

    value: str
    selected: bool
    exists: bool
    in_stock: bool
    disabled: bool  # not to be chosen: no such combination, or sold out (a colour stays choosable: its pictures)
    swatch: str = ""

    @property
    def state(self) -> str:
        if not self.exists:
            return "missing"
        return "available" if self.in_stock else "sold-out"


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
    def option_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for variant in self.variants:
            for name, _ in variant.options:
                if name not in names:
                    names.append(name)
        return tuple(names)

    # ---- the variant picker

    @property
    def has_picker(self) -> bool:
        return len(self.variants) > 1

    @cached_property
    def _grid(self) -> tuple[bool, dict[int, tuple[str, ...]]]:
        """Whether the options make a grid (every variant has a value for each, no two the same values), and each
        variant's value of each option group (variant id -> values); without a grid, one group of labels."""
        names = self.option_names
        grid = {v.id: tuple(dict(v.options).get(n, "") for n in names) for v in self.variants}
        complete = all(len(v.options) == len(names) for v in self.variants)
        if names and complete and len(set(grid.values())) == len(grid):
            return True, grid
        labels = [v.label for v in self.variants]
        return False, {v.id: (v.label if labels.count(v.label) == 1 else v.sku,) for v in self.variants}

    def values_of(self, variant: VariantInfo) -> tuple[str, ...]:
        """The variant's value of each option group, in the groups' order."""
        return self._grid[1][variant.id]

    @cached_property
    def option_groups(self) -> tuple[OptionGroup, ...]:
        """The options the shopper chooses from. Variants whose options do not make a grid (one lacks a value,
        two have the same) are offered as one group, "Option", of their labels."""
        names = self.option_names if self._grid[0] else ("Option",)
        groups = []
        for index, name in enumerate(names):
            values = tuple(dict.fromkeys(self.values_of(v)[index] for v in self.variants))
            groups.append(OptionGroup(name=name, key=option_key(name), values=values, is_colour=is_colour_option(name)))
        return tuple(groups)

    def choices(self, chosen: VariantInfo) -> tuple[tuple[OptionGroup, tuple[OptionChoice, ...]], ...]:
        """Each option group with its values as offered when `chosen` is the variant chosen: a value of a group is
        judged together with the values chosen in the groups before it (sizes follow the colour)."""
        picked = self.values_of(chosen)
        rows = [(self.values_of(v), v.in_stock) for v in self.variants]
        result = []
        for index, group in enumerate(self.option_groups):
            offered = []
            for value in group.values:
                matching = [ok for values, ok in rows if values[:index] == picked[:index] and values[index] == value]
                selected = picked[index] == value
                offered.append(
                    OptionChoice(
                        value=value,
                        selected=selected,
                        exists=bool(matching),
                        in_stock=any(matching),
                        disabled=not selected and not group.is_colour and not any(matching),
                        swatch=swatch(value) if group.is_colour else "",
                    )
                )
            result.append((group, tuple(offered)))
        return tuple(result)

    def variant_for(self, values: dict[str, str], *, current: VariantInfo | None = None) -> VariantInfo | None:
        """The variant to show for what the shopper chose (option group key -> value; groups left out keep the
        current variant's value): in stock first, then the one matching the most groups, the first groups first.
        None when no variant has the first value chosen."""
        if not self.variants:
            return None
        groups = self.option_groups
        base = self.values_of(current) if current is not None else self.values_of(self.variants[0])
        wanted = tuple(values.get(g.key, base[i]) for i, g in enumerate(groups))
        first = next((i for i, g in enumerate(groups) if g.key in values), None)
        candidates = [v for v in self.variants if first is None or self.values_of(v)[first] == wanted[first]] or list(
            self.variants
        )

        def rank(variant: VariantInfo) -> tuple:
            own = self.values_of(variant)
            return (variant.in_stock, *(own[i] == wanted[i] for i in range(len(groups))))

        if first is not None and not any(self.values_of(v)[first] == wanted[first] for v in self.variants):
            return None
        return max(candidates, key=rank)

    def colour_of(self, variant: VariantInfo | None) -> str:
        return colour_of(variant.options) if variant is not None else ""

    def images_for(self, colour: str) -> tuple[ImageInfo, ...]:
        """The pictures to show for a colour: its own, then those of every colour; all of them when the colour
        has none of its own and there are no general ones."""
        own = tuple(i for i in self.images if colour and i.colour.lower() == colour.lower())
        general = tuple(i for i in self.images if not i.colour)
        return own + general or self.images


# ---------------------------------------------------------------- stock and reservations


STOCK_BULK_MAX = 500  # stock levels stock_set_many sets in one transaction


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int
    updated_at: datetime | None = None

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


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


# ---------------------------------------------------------------- catalog edits (the REST API, imports)


@dataclass(frozen=True)
class CategoryRecord:
    """A category as saved by category_create / category_update."""

    id: int
    name: str
    slug: str
    parent_id: int | None
    description: str
    position: int
    is_active: bool
    updated_at: datetime


@dataclass(frozen=True)
class VariantSpec:
    """A new variant: what product_create and variant_create take. on_hand is its stock to start with; currency
    None is the shop's (SHOP_CURRENCY), the only one accepted."""

    sku: str
    price: Decimal
    compare_at_price: Decimal | None = None
    options: tuple[tuple[str, str], ...] = ()
    currency: str | None = None
    weight_grams: int = 0
    position: int | None = None  # None: after the product's other variants
    is_active: bool = True
    on_hand: int = 0


@dataclass(frozen=True)
class VariantChanges:
    """Changes to an existing variant, found by SKU (product_update's `variants`); UNSET leaves a field as it is."""

    sku: str
    price: Decimal | Unset = UNSET
    compare_at_price: Decimal | Unset | None = UNSET
    options: tuple[tuple[str, str], ...] | Unset = UNSET
    weight_grams: int | Unset = UNSET
    position: int | Unset = UNSET
    is_active: bool | Unset = UNSET


@dataclass(frozen=True)
class VariantRecord:
    id: int
    product_id: int
    sku: str
    options: tuple[tuple[str, str], ...]
    price: Decimal
    compare_at_price: Decimal | None
    currency: str
    weight_grams: int
    position: int
    is_active: bool
    on_hand: int
    reserved: int
    updated_at: datetime


@dataclass(frozen=True)
class ProductRecord:
    """A product as saved by product_create / product_update, with its variants (inactive ones too)."""

    id: int
    title: str
    slug: str
    category_id: int
    brand_slug: str | None
    is_active: bool
    updated_at: datetime
    variants: tuple[VariantRecord, ...]


# ---------------------------------------------------------------- demo data


@dataclass(frozen=True)
class DemoSeedResult:
    created: int
    existing: int
    categories: int
    brands: int
