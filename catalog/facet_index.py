"""An in-memory index of the active products for category pages: their facet counts and the order of their pages
in a time that does not grow with the catalog's size. Private to catalog: catalog.listing uses it.

Each process keeps one Snapshot (immutable: a patch makes a new one, swapped in whole, so threads reading the old
one are not disturbed). A product has a slot; a set of products is a bitmap, a Python int whose bit `slot` is set
(`int.bit_count()` counts it): one per category (the product's own), per brand, per option value (key, name,
value, from ProductOptionValue), and the in-stock and active products. A category page ORs the bitmaps of its
subtree (resolved from the live category tree, so moving or hiding categories needs no rebuild), ANDs the filters
and counts each facet value with every filter but its own. The page is read from a permutation of the slots per
sort (computed when first asked for), in-stock products first; its cards are then read from the database by id, so
they are always fresh. On PostgreSQL a snapshot also holds the products' search data (catalog.search_index), so a
search's matches and their rank are found in memory as well.

Freshness, across processes (nothing tells the index of a change; it finds changes in the database, so a change
made by another process is seen as one made by this one): every use runs one query down the updated_at index
(or carries it as scalar subqueries in the page's card read), over the products changed after window_start:
how many, the latest updated_at and a checksum of them. refresh_products sets updated_at whenever listing fields,
option values or the stock flag change, and a product's save does too. When the answer is not what the snapshot
expects, the rows of that window are compared by (id, updated_at) and the changed ones read again and patched in
(more than PATCH_MAX: rebuilt). window_start is WINDOW before the last time the database agreed: transactions
commit out of updated_at order, and one still open then stamped its rows after that (if it is shorter than
WINDOW). Every VERIFY_SECONDS the number of active products is compared as well (a product deleted long after
its last change: no updated_at tells of it), and every REBUILD_SECONDS the snapshot is rebuilt from scratch (a
transaction open longer than WINDOW, an UPDATE that left updated_at alone). A page that finds one of its cards
gone rebuilds at once. Categories need nothing: a subtree is read from the live category tree at every use.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
from django.db import connections
from django.db.models import Count, DateTimeField, IntegerField, Max, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from catalog.models import Product, ProductOptionValue
from catalog.search import Term
from catalog.search_index import SearchIndex

logger = logging.getLogger(__name__)

WINDOW = timedelta(seconds=120)  # how long a transaction that changes products may stay open (see confirm)
VERIFY_SECONDS = 60.0  # how often the number of active products is compared (~30 ms at 100k products)
REBUILD_SECONDS = 1800.0  # how often the snapshot is rebuilt whatever the checks say (~1.3 s at 100k)
PATCH_MAX = 5000  # more changed products than this at once (a bulk import): rebuild instead of patching

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL_HIGH = np.int64(2**62)  # a product without a price (no active variant), where the database sorts NULL last
_FIELDS = (
    "id",
    "is_active",
    "category_id",
    "brand__slug",
    "brand_name",
    "min_price",
    "in_stock",
    "is_featured",
    "popularity",
    "published_at",
    "updated_at",
)

BrandKey = tuple[str, str]  # (brand slug, brand name as the product shows it)
OptionKey = tuple[str, str, str]  # (key, name, value)


def _bit_array(bits: int, n: int) -> np.ndarray:
    """A bitmap as a numpy array of n booleans."""
    raw = np.frombuffer(bits.to_bytes((n + 7) // 8 or 1, "little"), dtype=np.uint8)
    return np.unpackbits(raw, count=n, bitorder="little").view(bool)


def _bits(mask: np.ndarray) -> int:
    """A numpy boolean array as a bitmap."""
    return int.from_bytes(np.packbits(mask, bitorder="little").tobytes(), "little")


def _slots_bits(slots: Iterable[int], n: int) -> int:
    """The bitmap of these slots (of n)."""
    return _bits_of(np.fromiter(slots, dtype=np.int64), n)


def _bits_of(slots: np.ndarray, n: int) -> int:
    mask = np.zeros(n, dtype=bool)
    mask[slots] = True
    return _bits(mask)


def _cents(price: Decimal | None) -> int:
    return -1 if price is None else int(price.scaleb(2))


def _checksum(moment: datetime) -> int:
    """What the freshness check adds up of an updated_at: its seconds and microseconds (in UTC)."""
    return moment.second * 1_000_000 + moment.microsecond


def _checksum_sql(connection: Any, column: str) -> str:
    """_checksum of a column, in SQL (SQLite keeps datetimes as text in UTC: 'YYYY-MM-DD HH:MM:SS[.ffffff]')."""
    if connection.vendor == "sqlite":
        return f"CAST(ROUND(CAST(SUBSTR({column}, 18) AS REAL) * 1000000) AS INTEGER)"
    return f"EXTRACT(MICROSECONDS FROM {column})"  # PostgreSQL: seconds and microseconds, in microseconds


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


class Subtree:
    """What a category subtree (or the whole catalog) holds: its products, and the brands and option values that
    occur in it (only those can have a count above 0)."""

    def __init__(self, snapshot: Snapshot, bits: int) -> None:
        self.bits = bits
        self.brands = tuple((key, b) for key, b in snapshot.brands.items() if b & bits)
        self.options = tuple((key, b) for key, b in snapshot.options.items() if b & bits)


class Snapshot:
    """The index at one moment. Never changed once published (the lazily computed orders and subtrees aside)."""

    def __init__(
        self,
        *,
        ids: np.ndarray,
        cents: np.ndarray,
        featured: np.ndarray,
        popularity: np.ndarray,
        published: np.ndarray,
        alive: int,
        in_stock: int,
        categories: dict[int, int],
        brands: dict[BrandKey, int],
        brand_rank: dict[str, int],
        options: dict[OptionKey, int],
        window_start: datetime,
        recent: dict[int, datetime],
        built_at: float,
        verified_at: float,
        nulls_largest: bool,
        search: SearchIndex | None = None,
        orders: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.n = len(ids)
        self.ids, self.cents, self.featured = ids, cents, featured
        self.popularity, self.published = popularity, published
        self.alive, self.in_stock = alive, in_stock
        self.in_stock_array = _bit_array(in_stock, self.n)
        self.categories, self.brands, self.brand_rank, self.options = categories, brands, brand_rank, options
        by_key: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for (key, _name, value), b in options.items():
            by_key[key][value].append(b)
        self.option_bits = {key: {value: _or(bs) for value, bs in values.items()} for key, values in by_key.items()}
        by_slug: dict[str, list[int]] = defaultdict(list)
        for (slug, _name), b in brands.items():
            by_slug[slug].append(b)
        self.brand_bits = {slug: _or(bs) for slug, bs in by_slug.items()}
        # Every product (active or not) changed after window_start: id -> updated_at. window_start only moves
        # forward, to WINDOW before the last time the database was seen to agree (confirm).
        self.window_start = window_start
        self.recent = recent
        self._times = sorted(recent.values())
        self._sums = list(itertools.accumulate((_checksum(t) for t in self._times), initial=0))
        self.built_at, self.verified_at = built_at, verified_at
        self.nulls_largest = nulls_largest
        self.search = search  # PostgreSQL: the products' search data (catalog.search_index); SQLite: None
        self._orders: dict[str, np.ndarray] = dict(orders or {})
        self._subtrees: dict[tuple[int, ...] | None, Subtree] = {}

    # ---------------------------------------------------------------- freshness
    def expected(self, since: datetime) -> tuple[int, datetime | None, int]:
        """What the database should answer, if nothing changed, for the products changed after `since` (not
        before window_start): how many, the latest updated_at, and the checksum of their updated_at (which
        catches a product of the window stamped again below the latest)."""
        first = bisect.bisect_right(self._times, since)
        n = len(self._times) - first
        return n, (self._times[-1] if n else None), self._sums[-1] - self._sums[first]

    def confirm(self, at: datetime) -> None:
        """The database agreed at `at`: a change it did not show yet is of a transaction still open then, whose
        updated_at is after at - WINDOW (if it is shorter than WINDOW)."""
        self.window_start = max(self.window_start, at - WINDOW)  # a race of two threads leaves either: both safe

    # ---------------------------------------------------------------- reads
    def subtree(self, category_ids: tuple[int, ...] | None) -> Subtree:
        """The products of these categories (None: of the whole catalog)."""
        key = None if category_ids is None else tuple(sorted(category_ids))
        found = self._subtrees.get(key)
        if found is None:
            bits = self.alive if key is None else _or(self.categories.get(c, 0) for c in key)
            found = self._subtrees[key] = Subtree(self, bits)
        return found

    def among(self, subtree: Subtree, product_ids: Sequence[int]) -> Subtree:
        """Those products of the subtree that are among these (a search's results)."""
        return Subtree(self, subtree.bits & _bits_of(self.slots_of(product_ids)[1], self.n))

    def among_matched(self, subtree: Subtree, matched: np.ndarray) -> Subtree:
        """Those products of the subtree that a search matched (a boolean per slot: search_match)."""
        return Subtree(self, subtree.bits & _bits(matched))

    def search_match(self, terms: Sequence[Term]) -> tuple[np.ndarray, np.ndarray]:
        """Which slots every term of a search matches (booleans, deactivated products included: a subtree's bits
        leave them out), and their relevance (catalog.search_index)."""
        if self.search is None:
            raise RuntimeError("the facet index holds no search data on this database")
        return self.search.match(terms, self.n)

    def slots_of(self, product_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Which of these products the index holds (a boolean per id), and their slots."""
        wanted = np.asarray(product_ids, dtype=np.int64)
        by_id = self.order("id")
        if not len(by_id) or not len(wanted):
            return np.zeros(len(wanted), dtype=bool), np.zeros(0, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self.ids[by_id], wanted), len(by_id) - 1)
        held = self.ids[by_id[positions]] == wanted
        return held, by_id[positions[held]]

    def brands_of(self, slugs: Sequence[str]) -> int:
        return _or(self.brand_bits.get(slug, 0) for slug in slugs)

    def option_of(self, key: str, values: Sequence[str]) -> int:
        own = self.option_bits.get(key, {})
        return _or(own.get(value, 0) for value in values)

    def price_bits(self, low: Decimal | None, high: Decimal | None) -> int:
        """The products whose min_price is within [low, high] (either may be None: no bound); none without a price."""
        keep = self.cents >= 0
        if low is not None:
            keep &= self.cents >= _bound(low * 100, ROUND_CEILING)
        if high is not None:
            keep &= self.cents <= _bound(high * 100, ROUND_FLOOR)
        return _bits(keep)

    def price_span(self, bits: int) -> tuple[Decimal | None, Decimal | None]:
        """The lowest and the highest min_price of these products (None, None: none has a price)."""
        if not bits:
            return None, None
        by_price = self.order("priced")
        chosen = _bit_array(bits, self.n)[by_price]
        if not chosen.any():
            return None, None
        low = self.cents[by_price[chosen.argmax()]]
        high = self.cents[by_price[len(chosen) - 1 - chosen[::-1].argmax()]]
        return Decimal(int(low)).scaleb(-2), Decimal(int(high)).scaleb(-2)

    def order(self, sort: str) -> np.ndarray:
        """The slots in the order of this sort, the in-stock flag aside (pages put in-stock products first)."""
        found = self._orders.get(sort)
        if found is None:
            found = self._orders[sort] = self._sorted(sort)
        return found

    def _sorted(self, sort: str) -> np.ndarray:
        ids = self.ids
        if sort == "id":
            return np.argsort(ids, kind="stable")
        if sort == "priced":  # the products with a price, cheapest first (for the price span)
            priced = np.flatnonzero(self.cents >= 0)
            return priced[np.argsort(self.cents[priced], kind="stable")]
        if sort in ("price_asc", "price_desc"):  # NULL where the database puts it: last (PostgreSQL) or first
            null = _NULL_HIGH if self.nulls_largest else np.int64(-1)
            prices = np.where(self.cents >= 0, self.cents, null)
            return np.lexsort((ids, prices if sort == "price_asc" else -prices))
        if sort == "newest":
            return np.lexsort((-ids, -self.published))
        return np.lexsort((ids, -self.popularity, ~self.featured))  # relevance: featured, popular, then by id

    def page(self, bits: int, sort: str, start: int, count: int) -> list[int]:
        """The ids of the products at positions [start, start + count) of this set in this sort's order."""
        order = self.order(sort)
        chosen = _bit_array(bits, self.n)
        available = chosen & self.in_stock_array
        found = np.flatnonzero(available[order])
        wanted = order[found[start : start + count]]
        if len(wanted) < count:
            sold_out = np.flatnonzero((chosen & ~self.in_stock_array)[order])
            skip = max(0, start - len(found))
            wanted = np.concatenate((wanted, order[sold_out[skip : skip + count - len(wanted)]]))
        return [int(pk) for pk in self.ids[wanted]]

    def page_scored(self, bits: int, scores: np.ndarray, start: int, count: int) -> list[int]:
        """The ids at positions [start, start + count) of this set ordered as a search's SQL orders them: in stock
        first, then by relevance (scores, one per slot: search_match), popularity (higher first) and id."""
        slots = np.flatnonzero(_bit_array(bits, self.n))
        order = np.lexsort((self.ids[slots], -self.popularity[slots], -scores[slots], ~self.in_stock_array[slots]))
        return [int(pk) for pk in self.ids[slots[order[start : start + count]]]]

    def page_ranked(self, bits: int, ranked: Sequence[tuple[int, float | None]], start: int, count: int) -> list[int]:
        """The ids at positions [start, start + count) of these products ((id, relevance) pairs of a search) that
        are in the set, ordered as the SQL of a search orders them: in stock first, then by relevance (higher
        first; None where the database puts NULL), popularity (higher first) and id."""
        held, slots = self.slots_of([pk for pk, _ in ranked])
        null = np.inf if self.nulls_largest else -np.inf
        relevance = np.fromiter((null if r is None else r for _, r in ranked), dtype=np.float64, count=len(ranked))
        relevance = relevance[held]
        chosen = _bit_array(bits, self.n)[slots]
        slots, relevance = slots[chosen], relevance[chosen]
        order = np.lexsort((self.ids[slots], -self.popularity[slots], -relevance, ~self.in_stock_array[slots]))
        return [int(pk) for pk in self.ids[slots[order[start : start + count]]]]


def _bound(cents: Decimal, rounding: str) -> int:
    """A price bound in whole cents, within what the price array holds."""
    return min(max(int(cents.to_integral_value(rounding=rounding)), -2), int(_NULL_HIGH))


def _or(parts: Iterable[int]) -> int:
    bits = 0
    for part in parts:
        bits |= part
    return bits


# ---------------------------------------------------------------- building and keeping it fresh


def _alias() -> str:
    return Product.objects.db


def _searches() -> bool:
    """Whether the snapshot holds the products' search data: on PostgreSQL (SQLite's search stays in SQL)."""
    return connections[_alias()].vendor == "postgresql"


def _nulls_largest() -> bool:
    return bool(connections[_alias()].features.nulls_order_largest)


def _window_rows(window_start: datetime) -> dict[int, datetime]:
    return dict(Product.objects.filter(updated_at__gt=window_start).order_by().values_list("id", "updated_at"))


def _option_rows(product_ids: Sequence[int] | None) -> Iterable[tuple[OptionKey, Sequence[int]]]:
    """(key, name, value) and the products that have it: of these products, or (None) of every active one."""
    rows = (
        ProductOptionValue.objects.all()
        if product_ids is None
        else ProductOptionValue.objects.filter(product_id__in=product_ids)
    )
    if product_ids is None and connections[_alias()].vendor == "postgresql":
        from django.contrib.postgres.aggregates import ArrayAgg

        grouped = rows.order_by().values_list("key", "name", "value").annotate(ids=ArrayAgg("product_id"))
        for key, name, value, ids in grouped:
            yield (key, name, value), ids
        return
    by_option: dict[OptionKey, list[int]] = defaultdict(list)
    for product_id, key, name, value in rows.order_by().values_list("product_id", "key", "name", "value"):
        by_option[(key, name, value)].append(product_id)
    yield from by_option.items()


def _brand_rank(names: Iterable[str]) -> dict[str, int]:
    """The brand names in the database's own order (its collation), as the SQL facet orders them."""
    wanted = set(names)
    if not wanted:
        return {}
    ordered = (
        Product.objects.filter(brand_name__in=wanted)
        .order_by("brand_name")
        .values_list("brand_name", flat=True)
        .distinct()
    )
    return {name: rank for rank, name in enumerate(ordered)}


def build() -> tuple[Snapshot, dict[int, int]]:
    """A snapshot from scratch, and the slot of each product: a few bulk reads."""
    now = time.monotonic()
    window_start = timezone.now() - WINDOW
    recent = _window_rows(window_start)  # first: a product changed meanwhile is read again at the next use
    rows = list(Product.objects.filter(is_active=True).order_by("id").values_list(*_FIELDS))
    n = len(rows)
    slot_of = {row[0]: slot for slot, row in enumerate(rows)}
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    cents = np.fromiter((_cents(r[5]) for r in rows), dtype=np.int64, count=n)
    featured = np.fromiter((r[7] for r in rows), dtype=bool, count=n)
    popularity = np.fromiter((r[8] for r in rows), dtype=np.int64, count=n)
    published = np.fromiter((_micros(r[9]) for r in rows), dtype=np.int64, count=n)
    in_stock = _bits(np.fromiter((r[6] for r in rows), dtype=bool, count=n))
    category_slots: dict[int, list[int]] = defaultdict(list)
    brand_slots: dict[BrandKey, list[int]] = defaultdict(list)
    for slot, row in enumerate(rows):
        category_slots[row[2]].append(slot)
        if row[3] is not None:
            brand_slots[(row[3], row[4])].append(slot)
        if row[10] > window_start:
            recent[row[0]] = row[10]
    options: dict[OptionKey, int] = {}
    for option, product_ids in _option_rows(None):
        bits = _slots_bits((slot_of[pk] for pk in product_ids if pk in slot_of), n)
        if bits:
            options[option] = options.get(option, 0) | bits
    search = SearchIndex.build(ids) if _searches() else None  # after the rows: see SearchIndex.build
    return Snapshot(
        ids=ids,
        cents=cents,
        featured=featured,
        popularity=popularity,
        published=published,
        alive=(1 << n) - 1,
        in_stock=in_stock,
        categories={c: _slots_bits(s, n) for c, s in category_slots.items()},
        brands={b: _slots_bits(s, n) for b, s in brand_slots.items()},
        brand_rank=_brand_rank(name for _slug, name in brand_slots),
        options=options,
        window_start=window_start,
        recent=recent,
        built_at=now,
        verified_at=now,
        nulls_largest=_nulls_largest(),
        search=search,
    ), slot_of


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    """Ids in lists short enough for any database's bound parameters (SQLite before 3.32: 999)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _fingerprint(moments: Iterable[datetime]) -> tuple[int, datetime | None, int]:
    listed = list(moments)
    return len(listed), max(listed, default=None), sum(_checksum(m) for m in listed)


def _window(old: Snapshot, seen: Seen | None) -> tuple[dict[int, datetime], datetime, datetime]:
    """The products changed after `since` as the database has them (id -> updated_at), `since`, and when the
    database was last seen to agree with that. Usually only the products stamped after the latest the snapshot
    knows need reading: if, added to what it knows, they give the fingerprint the check saw, nothing else changed.
    Else (a late commit, a deletion) the whole window is read."""
    if seen is not None:
        latest = max(old.recent.values(), default=seen.since)
        trial = {pk: m for pk, m in old.recent.items() if m > seen.since}
        trial.update(_window_rows(max(latest, seen.since)))
        if _fingerprint(trial.values()) == (seen.n, seen.last, seen.checksum):
            return trial, seen.since, seen.at
    read_at = timezone.now()
    return _window_rows(old.window_start), old.window_start, read_at


def _patch(old: Snapshot, slot_of: dict[int, int], seen: Seen | None = None) -> Snapshot | None:
    """A new snapshot with the products changed in the window read again (None: too many, rebuild instead).
    slot_of (id -> slot) is extended in place: a slot, once given, keeps its product."""
    window, since, read_at = _window(old, seen)
    known = {pk: moment for pk, moment in old.recent.items() if moment > since}
    changed = {pk for pk, moment in window.items() if known.get(pk) != moment}
    changed |= known.keys() - window.keys()  # gone from the window: deleted (or a change rolled back)
    if len(changed) > PATCH_MAX:
        return None
    wanted = sorted(changed)
    rows = {}
    for chunk in _chunks(wanted):
        rows.update((row[0], row) for row in Product.objects.filter(pk__in=chunk).order_by().values_list(*_FIELDS))
    active = [pk for pk in wanted if pk in rows and rows[pk][1]]
    own_options: dict[int, list[OptionKey]] = defaultdict(list)
    for chunk in _chunks(active):
        for option, product_ids in _option_rows(chunk):
            for pk in product_ids:
                own_options[pk].append(option)

    added = {pk: old.n + i for i, pk in enumerate(pk for pk in active if pk not in slot_of)}  # new slots
    grow = len(added)

    def grown(array: np.ndarray, fill: Any) -> np.ndarray:
        return np.concatenate((array, np.full(grow, fill, dtype=array.dtype))) if grow else array.copy()

    ids, cents, featured = grown(old.ids, 0), grown(old.cents, -1), grown(old.featured, False)
    popularity, published = grown(old.popularity, 0), grown(old.published, 0)
    touched = _or(1 << slot_of[pk] for pk in wanted if pk in slot_of)
    keep = ~touched

    def cleared(bitmaps: dict[Any, int]) -> dict[Any, int]:
        return {key: b & keep for key, b in bitmaps.items()}

    categories, brands, options = cleared(old.categories), cleared(old.brands), cleared(old.options)
    alive, in_stock = old.alive & keep, old.in_stock & keep
    resorted: set[str] = set()
    for pk in active:
        _, _, category_id, brand_slug, brand_name, price, stock, is_featured, pop, when, _ = rows[pk]
        slot = slot_of[pk] if pk in slot_of else added[pk]
        bit = 1 << slot
        new = (_cents(price), bool(is_featured), pop, _micros(when))
        if slot >= old.n or new[0] != old.cents[slot]:
            resorted |= {"price_asc", "price_desc", "priced"}
        if slot >= old.n or new[1] != old.featured[slot] or new[2] != old.popularity[slot]:
            resorted.add("relevance")
        if slot >= old.n or new[3] != old.published[slot]:
            resorted.add("newest")
        ids[slot], (cents[slot], featured[slot], popularity[slot], published[slot]) = pk, new
        alive |= bit
        if stock:
            in_stock |= bit
        categories[category_id] = categories.get(category_id, 0) | bit
        if brand_slug is not None:
            brands[(brand_slug, brand_name)] = brands.get((brand_slug, brand_name), 0) | bit
        for option in own_options.get(pk, ()):
            options[option] = options.get(option, 0) | bit

    search = None
    if old.search is not None:
        search = old.search.patched({pk: slot_of.get(pk, added.get(pk, -1)) for pk in active})
        if search is None:  # too many texts changed since the build
            return None
    brands = {key: b for key, b in brands.items() if b}
    brand_rank = old.brand_rank
    if any(name not in brand_rank for _slug, name in brands):
        brand_rank = _brand_rank(name for _slug, name in brands)
    recent = {**window, **{pk: row[10] for pk, row in rows.items()}}
    window_start = max(old.window_start, read_at - WINDOW)
    patched = Snapshot(
        ids=ids,
        cents=cents,
        featured=featured,
        popularity=popularity,
        published=published,
        alive=alive,
        in_stock=in_stock,
        categories={key: b for key, b in categories.items() if b},
        brands=brands,
        brand_rank=brand_rank,
        options={key: b for key, b in options.items() if b},
        window_start=window_start,
        recent={pk: m for pk, m in recent.items() if m > window_start},
        built_at=old.built_at,
        verified_at=old.verified_at,
        nulls_largest=old.nulls_largest,
        search=search,
        orders={sort: o for sort, o in old._orders.items() if sort not in resorted} if not grow else None,
    )
    slot_of.update(added)  # last: a patch that failed leaves slot_of as the snapshot in use has it
    return patched


@dataclass(frozen=True)
class Seen:
    """What the database answered at `at` about the products changed after `since`: how many, the latest."""

    since: datetime
    at: datetime
    n: int
    last: datetime | None
    checksum: int

    def agrees(self, snapshot: Snapshot) -> bool:
        return snapshot.expected(self.since) == (self.n, self.last, self.checksum)

    def read(self, row: dict[str, Any]) -> Seen:
        """The answer, from a row that carried check_columns."""
        return replace(self, n=row["_fp_n"], last=row["_fp_last"], checksum=int(row["_fp_sum"] or 0))


CHECK_COLUMNS = ("_fp_n", "_fp_last", "_fp_sum")


class FacetIndex:
    """The process's index. current() gives a snapshot checked against the database (one query); latest() one
    without that check, for a caller that checks it within its own query (fingerprint_columns, then sync)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._slot_of: dict[int, int] = {}

    def reset(self) -> None:
        """Forget everything: the next use rebuilds (tests; a listing that found a card gone)."""
        with self._lock:
            self._snapshot = None
            self._slot_of = {}

    def current(self) -> Snapshot:
        snapshot = self.latest()
        return self.sync(snapshot, self.seen(snapshot))

    def latest(self) -> Snapshot:
        """The snapshot as it is, built if there is none; rebuilt every REBUILD_SECONDS, and every VERIFY_SECONDS
        rebuilt if the number of active products is not what it holds (a deletion it could not see)."""
        snapshot = self._snapshot
        if snapshot is None:
            return self._rebuild(None)
        now = time.monotonic()
        if now - snapshot.built_at > REBUILD_SECONDS:
            return self._rebuild(snapshot)
        if now - snapshot.verified_at > VERIFY_SECONDS:
            snapshot.verified_at = now  # first, so other threads do not count too; it only ever moves forward
            if Product.objects.filter(is_active=True).count() != snapshot.alive.bit_count():
                rebuilt = self._rebuild(snapshot)
                if rebuilt is snapshot:  # another thread held the lock: count again at the next use
                    snapshot.verified_at = 0.0
                return rebuilt
        return snapshot

    @staticmethod
    def seen(snapshot: Snapshot) -> Seen:
        """The freshness check: one query down the updated_at index, over the products changed lately."""
        connection = connections[_alias()]
        since, at = snapshot.window_start, timezone.now()
        column = f"{connection.ops.quote_name(Product._meta.db_table)}.{connection.ops.quote_name('updated_at')}"
        found = Product.objects.filter(updated_at__gt=since).aggregate(
            n=Count("id"),
            last=Max("updated_at"),
            checksum=Sum(RawSQL(_checksum_sql(connection, column), (), output_field=IntegerField())),  # noqa: S611
        )
        return Seen(since, at, found["n"], found["last"], int(found["checksum"] or 0))

    @staticmethod
    def check_columns(snapshot: Snapshot) -> tuple[Seen, Any]:
        """The freshness check for another query of catalog's database to carry: what to fill in from its row
        (Seen.read), and the parameter of check_annotations."""
        connection = connections[_alias()]
        since, at = snapshot.window_start, timezone.now()
        param = Product._meta.get_field("updated_at").get_db_prep_value(since, connection)
        return Seen(since, at, -1, None, 0), param

    @staticmethod
    def check_annotations(n_param: Any, last_param: Any, sum_param: Any) -> dict[str, RawSQL]:
        """The freshness check as columns (CHECK_COLUMNS: scalar subqueries down the updated_at index), for
        QuerySet.annotate(); each parameter the one from check_columns (three, for a statement compiled once:
        kernel.db.prepared_rows wants each of its arguments in one place)."""
        connection = connections[_alias()]
        table, updated_at = connection.ops.quote_name(Product._meta.db_table), connection.ops.quote_name("updated_at")
        where = f"FROM {table} fp WHERE fp.{updated_at} > %s"  # quoted names only
        total = _checksum_sql(connection, f"fp.{updated_at}")
        return {
            "_fp_n": RawSQL(f"SELECT COUNT(*) {where}", (n_param,), output_field=IntegerField()),  # noqa: S611
            "_fp_last": RawSQL(f"SELECT MAX(fp.{updated_at}) {where}", (last_param,), output_field=DateTimeField()),  # noqa: S611
            "_fp_sum": RawSQL(f"SELECT SUM({total}) {where}", (sum_param,), output_field=IntegerField()),  # noqa: S611
        }

    def sync(self, snapshot: Snapshot, seen: Seen) -> Snapshot:
        """This snapshot if the database's answer (seen) is what it expects; else one patched with what changed."""
        if seen.agrees(snapshot):
            snapshot.confirm(seen.at)
            return snapshot
        with self._lock:
            latest = self._snapshot
            if latest is None:
                return self._rebuild_locked()
            if latest is not snapshot:  # another thread patched or rebuilt meanwhile
                snapshot = latest
                seen = self.seen(snapshot)
                if seen.agrees(snapshot):
                    snapshot.confirm(seen.at)
                    return snapshot
            patched = _patch(snapshot, self._slot_of, seen)
            if patched is None:
                return self._rebuild_locked()
            self._snapshot = patched
            return patched

    def _rebuild(self, stale: Snapshot | None) -> Snapshot:
        if stale is not None and not self._lock.acquire(blocking=False):
            return stale  # another thread is rebuilding: this request uses the old snapshot meanwhile
        if stale is None:
            self._lock.acquire()
        try:
            if self._snapshot is not None and self._snapshot is not stale:
                return self._snapshot
            return self._rebuild_locked()
        finally:
            self._lock.release()

    def _rebuild_locked(self) -> Snapshot:
        started = time.perf_counter()
        snapshot, slot_of = build()
        self._snapshot, self._slot_of = snapshot, slot_of
        logger.info("facet index built: %d products in %.0f ms", snapshot.n, (time.perf_counter() - started) * 1000)
        return snapshot


_indexes: dict[str, FacetIndex] = {}
_indexes_lock = threading.Lock()


def facet_index() -> FacetIndex:
    """This process's index of the catalog's database."""
    alias = _alias()
    found = _indexes.get(alias)
    if found is None:
        with _indexes_lock:
            found = _indexes.setdefault(alias, FacetIndex())
    return found


def reset() -> None:
    """Forget every index of this process (tests start from an empty one)."""
    for index in list(_indexes.values()):
        with contextlib.suppress(Exception):
            index.reset()
