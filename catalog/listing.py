"""Listings: category pages and search results with their facets, featured and newest products, search
suggestions. Private to catalog."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, Subquery

from catalog import search as _search
from catalog.categories import category_tree
from catalog.data import (
    DID_YOU_MEAN_BELOW,
    SEARCH_MAX_LENGTH,
    SIZE_ORDER,
    Facet,
    FacetValue,
    ListingFacets,
    ListingQuery,
    PageOutOfRange,
    ProductCard,
    ProductListing,
    Suggestion,
)
from catalog.facet_index import CHECK_COLUMNS, FacetIndex, Snapshot, Subtree, facet_index
from catalog.images import media_url
from catalog.models import Brand, Product, ProductOptionValue, Variant
from catalog.projection import LISTING_FIELDS
from kernel.db import db_for_module, prepared_rows

_CARD_FIELDS = ("id", "title", "slug", *LISTING_FIELDS)


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
        image_url=media_url(row["listing_image"]),
        image_alt=row["listing_image_alt"] or row["title"],
        add_variant_id=row.get("add_variant_id"),
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


def _match(text: str | None) -> _search.Match | None:
    return _search.prepare(text[:SEARCH_MAX_LENGTH]) if text else None


def _filters(query: ListingQuery, category_id: int | None, match: _search.Match | None) -> _Filters:
    base = Product.objects.filter(is_active=True)
    if category_id is not None:
        base = base.filter(category_id__in=category_tree().descendant_ids(category_id))
    if match is not None:
        base = base.filter(match.condition)
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
    They come from the process's facet index (catalog.facet_index: one indexed query to check it is fresh, then a
    time that does not grow with the catalog; a search adds the query of its matching ids), or, with
    CATALOG_FACET_INDEX off, from SQL: 3 queries, plus one per option filtered on. Sort and page do not change the
    result: callers may cache it.
    """
    return _listing_facets(query, category_id, text, _NOT_READ)


_NOT_READ: Any = object()  # a search's matching products not read yet


def _listing_facets(query: ListingQuery, category_id: int | None, text: str | None, found: Any) -> ListingFacets:
    if _indexed():
        snapshot = facet_index().current()
        if found is _NOT_READ:
            found = _found(text, ranked=False)
        return _facets_indexed(snapshot, query, category_id, found)
    return _facets_sql(query, category_id, text)


def listing_index_warm() -> int:
    """Build this process's facet index now (a web worker before its first request: about a second at 100,000
    products), so no shopper waits for it. Returns how many products it holds (0 with CATALOG_FACET_INDEX off)."""
    return facet_index().current().alive.bit_count() if _indexed() else 0


def _indexed() -> bool:
    return getattr(settings, "CATALOG_FACET_INDEX", True)


class _SqlMatches:
    """A search's matching products read from SQL, (id, relevance) pairs (relevance None unless ranked): SQLite."""

    def __init__(self, rows: list[tuple[int, Any]]) -> None:
        self.rows = rows

    def among(self, snapshot: Snapshot, subtree: Subtree) -> Subtree:
        return snapshot.among(subtree, [pk for pk, _ in self.rows])

    def page(self, snapshot: Snapshot, bits: int, start: int, count: int) -> list[int]:
        return snapshot.page_ranked(bits, self.rows, start, count)


class _IndexMatches:
    """A search's matching products found in the facet index's memory (PostgreSQL: catalog.search_index), in
    whichever snapshot the page is read from."""

    def __init__(self, terms: tuple[_search.Term, ...]) -> None:
        self.terms = terms
        self._of: tuple[Snapshot, Any, Any] | None = None

    def _on(self, snapshot: Snapshot) -> tuple[Any, Any]:
        if self._of is None or self._of[0] is not snapshot:
            self._of = (snapshot, *snapshot.search_match(self.terms))
        return self._of[1], self._of[2]

    def among(self, snapshot: Snapshot, subtree: Subtree) -> Subtree:
        return snapshot.among_matched(subtree, self._on(snapshot)[0])

    def page(self, snapshot: Snapshot, bits: int, start: int, count: int) -> list[int]:
        return snapshot.page_scored(bits, self._on(snapshot)[1], start, count)


_Found = _SqlMatches | _IndexMatches


def _found(text: str | None, *, ranked: bool) -> _Found | None:
    """The active products a search text matches; None without a text. With the facet index on PostgreSQL, its
    terms (their stems: a statement the first time a word is seen), matched in memory; else one query (on
    SQLite, two: the typo candidates first)."""
    if not text:
        return None
    if _indexed() and _search.postgres():
        return _IndexMatches(_search.postgres_terms(text[:SEARCH_MAX_LENGTH]))
    match = _match(text)
    if match is None:
        return None
    rows = Product.objects.filter(is_active=True).filter(match.condition).order_by()
    if ranked:
        return _SqlMatches(list(rows.annotate(relevance=match.rank).values_list("id", "relevance")))
    return _SqlMatches([(pk, None) for pk in rows.values_list("id", flat=True)])


def _facets_sql(query: ListingQuery, category_id: int | None, text: str | None) -> ListingFacets:
    f = _filters(query, category_id, _match(text))
    all_options = f.options_except()

    # 1. totals: matching products, how many are in stock, the price span (each ignoring its own filter)
    totals = f.base.filter(f.brand, all_options).aggregate(
        n_total=_count(f.price & f.stock),
        n_in_stock=_count(f.price & Q(in_stock=True)),
        price_floor=Min("min_price", filter=f.stock) if f.stock else Min("min_price"),
        price_ceiling=Max("min_price", filter=f.stock) if f.stock else Max("min_price"),
    )

    # 2. brand facet, counted with every filter but the brand's
    brand_rows = list(
        f.base.filter(all_options, f.price, f.stock)
        .exclude(brand=None)
        .values("brand__slug", "brand_name")
        .annotate(n=Count("id"))
        .order_by("brand_name")
    )

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
    return _assemble(query, totals, brand_rows, option_rows)


def _assemble(
    query: ListingQuery, totals: dict[str, Any], brand_rows: list[dict[str, Any]], option_rows: list[dict[str, Any]]
) -> ListingFacets:
    """The facets from the counts (brands in name order; options as rows of key, name, value, n), whichever way
    they were counted."""
    selected_brands = set(query.brands)
    brand_values = [
        FacetValue(r["brand__slug"], r["brand_name"], r["n"], r["brand__slug"] in selected_brands) for r in brand_rows
    ]
    # A chosen brand the other filters leave no product of stays in the facet (count 0), so it can be unticked.
    missing = selected_brands - {v.value for v in brand_values}
    if missing:
        brand_values += [
            FacetValue(slug, name, 0, True)
            for slug, name in Brand.objects.filter(slug__in=missing).values_list("slug", "name")
        ]
        brand_values.sort(key=lambda v: v.label.lower())
    facets = [Facet("brand", "Brand", tuple(brand_values))]

    selected_options = dict(query.options)
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in option_rows:
        by_key[row["key"]].append(row)
    for key in selected_options:  # a chosen value no product has under the other filters stays, with count 0
        known = {row["value"] for row in by_key[key]}
        if by_key[key]:
            name = by_key[key][0]["name"]
        else:  # no product left with this option at all: its name from any product that has it
            name = ProductOptionValue.objects.filter(key=key).values_list("name", flat=True).first() or key
        by_key[key] += [{"key": key, "name": name, "value": v, "n": 0} for v in selected_options[key] if v not in known]
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


@dataclass(frozen=True)
class _Bits:
    """The filters of a listing as bitmaps of the facet index (None: not filtered on)."""

    subtree: Subtree
    brand: int | None
    price: int | None
    stock: int | None
    options: dict[str, int]

    def both(self, *parts: int | None) -> int:
        bits = self.subtree.bits
        for part in parts:
            if part is not None:
                bits &= part
        return bits

    def options_except(self, skip: str | None = None) -> list[int]:
        return [bits for key, bits in self.options.items() if key != skip]

    def matching(self) -> int:
        return self.both(self.brand, self.price, self.stock, *self.options_except())


def _bits(snapshot: Snapshot, query: ListingQuery, category_id: int | None, found: _Found | None) -> _Bits:
    ids = None if category_id is None else category_tree().descendant_ids(category_id)
    subtree = snapshot.subtree(ids)
    if found is not None:
        subtree = found.among(snapshot, subtree)
    priced = query.price_min is not None or query.price_max is not None
    return _Bits(
        subtree=subtree,
        brand=snapshot.brands_of(query.brands) if query.brands else None,
        price=snapshot.price_bits(query.price_min, query.price_max) if priced else None,
        stock=snapshot.in_stock if query.in_stock else None,
        options={key: snapshot.option_of(key, values) for key, values in query.options},
    )


def _facets_indexed(
    snapshot: Snapshot, query: ListingQuery, category_id: int | None, found: _Found | None = None
) -> ListingFacets:
    """What _facets_sql counts, counted on the facet index's bitmaps (of a search's products: found): the same."""
    b = _bits(snapshot, query, category_id, found)
    with_brand_options = b.both(b.brand, *b.options_except())
    floor, ceiling = snapshot.price_span(b.both(with_brand_options, b.stock))
    totals = {
        "n_total": b.both(with_brand_options, b.price, b.stock).bit_count(),
        "n_in_stock": b.both(with_brand_options, b.price, snapshot.in_stock).bit_count(),
        "price_floor": floor,
        "price_ceiling": ceiling,
    }
    others = b.both(b.price, b.stock, *b.options_except())
    brand_rows = []
    for (slug, name), bits in b.subtree.brands:
        n = (others & bits).bit_count()
        if n:
            brand_rows.append({"brand__slug": slug, "brand_name": name, "n": n})
    last = len(snapshot.brand_rank)
    brand_rows.sort(key=lambda r: (snapshot.brand_rank.get(r["brand_name"], last), r["brand__slug"]))

    matching = b.matching()
    without = {key: b.both(b.brand, b.price, b.stock, *b.options_except(key)) for key in b.options}
    option_rows = []
    for (key, name, value), bits in b.subtree.options:
        n = (without.get(key, matching) & bits).bit_count()
        if n:
            option_rows.append({"key": key, "name": name, "value": value, "n": n})
    return _assemble(query, totals, brand_rows, option_rows)


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

    Available products come before sold-out ones under every sort (within each, the sort's own order). A search
    that finds fewer than DID_YOU_MEAN_BELOW products carries did_you_mean: the text with its unknown words
    replaced by the closest words of the catalog's titles and brands ("" when there is nothing to suggest).
    The page's products are found in the facet index (a search's matching ids, and their rank, from SQL) and
    their cards read by id; with CATALOG_FACET_INDEX off, by ORDER BY ... OFFSET in SQL.
    """
    start = (query.page - 1) * query.per_page
    if facets is None and _indexed():
        # Counts and page from one snapshot of the facet index, checked by the page's own read of its cards (a
        # search reads its matching products once for both).
        found = _found(text, ranked=query.sort == "relevance")
        snapshot = facet_index().latest()
        facets = _facets_indexed(snapshot, query, category_id, found)
        if not _in_range(query, facets):  # maybe only in a stale snapshot: check it before saying so
            snapshot = facet_index().current()
            facets = _facets_indexed(snapshot, query, category_id, found)
            _check_page(query, facets)
        items, used = _page_indexed(query, category_id, text, start, found, snapshot)
        if used is not snapshot:  # the catalog changed under the page: count on what the page was read from
            facets = _facets_indexed(used, query, category_id, found)
            _check_page(query, facets)
    else:
        if facets is None:
            facets = _listing_facets(query, category_id, text, _NOT_READ)
        _check_page(query, facets)
        if _indexed():
            items, _ = _page_indexed(query, category_id, text, start)
        else:
            items = _page_sql(query, category_id, text, start)
    num_pages = max(1, math.ceil(facets.total / query.per_page))
    suggestion = ""
    if text and facets.total < DID_YOU_MEAN_BELOW:
        suggestion = _search.did_you_mean(Product, text[:SEARCH_MAX_LENGTH])

    return ProductListing(
        items=items,
        total=facets.total,
        page=query.page,
        per_page=query.per_page,
        num_pages=num_pages,
        sort=query.sort,
        facets=facets.facets,
        in_stock_count=facets.in_stock_count,
        price_floor=facets.price_floor,
        price_ceiling=facets.price_ceiling,
        did_you_mean=suggestion,
    )


def _in_range(query: ListingQuery, facets: ListingFacets) -> bool:
    return 1 <= query.page <= max(1, math.ceil(facets.total / query.per_page))


def _check_page(query: ListingQuery, facets: ListingFacets) -> None:
    if not _in_range(query, facets):
        raise PageOutOfRange(query.page)


def _page_sql(query: ListingQuery, category_id: int | None, text: str | None, start: int) -> tuple[ProductCard, ...]:
    match = _match(text)
    matching = _filters(query, category_id, match).matching()
    if query.sort == "price_asc":
        ordering: tuple[Any, ...] = ("min_price", "id")
    elif query.sort == "price_desc":
        ordering = ("-min_price", "id")
    elif query.sort == "newest":
        ordering = ("-published_at", "-id")
    elif match is not None:
        matching = matching.annotate(relevance=match.rank)
        ordering = ("-relevance", "-popularity", "id")
    else:
        ordering = ("-is_featured", "-popularity", "id")
    rows = matching.order_by("-in_stock", *ordering).values(*_CARD_FIELDS)[start : start + query.per_page]
    return tuple(_card(r) for r in rows)


def _page_indexed(
    query: ListingQuery,
    category_id: int | None,
    text: str | None,
    start: int,
    found: Any = _NOT_READ,
    snapshot: Snapshot | None = None,
) -> tuple[tuple[ProductCard, ...], Snapshot]:
    """The page's ids from the facet index, their cards from the database (fresh), in one query that also carries
    the index's freshness check: if something changed, the index is patched and the page found again. A card gone
    (a product deleted since the index last looked) rebuilds the index and reads the page again. A search first
    reads its matching products (with their relevance when sorted by it) from SQL. Starts from `snapshot` (else
    the index's latest) and returns, with the cards, the snapshot they agree with."""
    index = facet_index()
    snapshot = snapshot or index.latest()
    ranked = query.sort == "relevance"
    if found is _NOT_READ:
        found = _found(text, ranked=ranked)
    wanted: list[int] = []
    by_id: dict[int, dict[str, Any]] = {}
    for _ in range(3):
        matching = _bits(snapshot, query, category_id, found).matching()
        if found is not None and ranked:
            wanted = found.page(snapshot, matching, start, query.per_page)
        else:
            wanted = snapshot.page(matching, query.sort, start, query.per_page)
        if not wanted:
            fresh = index.sync(snapshot, index.seen(snapshot))
            if fresh is snapshot:
                return (), snapshot
            snapshot = fresh
            continue
        seen, since = index.check_columns(snapshot)
        names = (*_CARD_FIELDS, *CHECK_COLUMNS)
        rows = [dict(zip(names, row, strict=True)) for row in
                prepared_rows("catalog.listing.checked_cards", _checked_cards, wanted, since, since, since,
                              using=db_for_module("catalog"))]  # fmt: skip
        seen = seen.read(rows[0]) if rows else index.seen(snapshot)
        fresh = index.sync(snapshot, seen)
        by_id = {row["id"]: row for row in rows}
        if fresh is snapshot:
            if len(by_id) == len(wanted):
                return tuple(_card(by_id[pk]) for pk in wanted), snapshot
            index.reset()
            fresh = index.latest()
        snapshot = fresh
    return tuple(_card(by_id[pk]) for pk in wanted if pk in by_id), snapshot  # still changing: the last read


def _checked_cards(product_ids: list[int], *since: Any) -> Any:
    """The cards of these products with the facet index's freshness check (facet_index.CHECK_COLUMNS)."""
    return (
        Product.objects.filter(pk__in=product_ids, is_active=True)
        .order_by()
        .annotate(**FacetIndex.check_annotations(*since))
        .values_list(*_CARD_FIELDS, *CHECK_COLUMNS)
    )


def products_featured(*, limit: int = 8) -> tuple[ProductCard, ...]:
    """Featured products, available ones first, then by popularity. Two reads down the featured products'
    popularity index (the available ones, then, if there are too few, the sold-out ones), each stopping after
    `limit` rows: one ORDER BY in_stock, popularity would sort every featured product (4,000 of 100,000) on
    every uncached home page."""
    rows = _prepared_cards("featured", _featured, True, limit)
    if len(rows) < limit:
        rows += _prepared_cards("featured", _featured, False, limit - len(rows))
    return tuple(_card(r) for r in rows)


def products_newest(*, limit: int = 8) -> tuple[ProductCard, ...]:
    """The newest products, available ones first. Two reads down the published_at index (the available newest,
    then, if there are too few, the sold-out newest), each stopping after `limit` rows: one ORDER BY in_stock,
    published_at would sort the whole catalog on every uncached home page."""
    rows = _prepared_cards("newest", _newest, True, limit)
    if len(rows) < limit:
        rows += _prepared_cards("newest", _newest, False, limit - len(rows))
    return tuple(_card(r) for r in rows)


def _featured(in_stock: bool, limit: int) -> Any:
    rows = Product.objects.filter(is_active=True, is_featured=True, in_stock=in_stock).order_by("-popularity", "id")
    return rows.values_list(*_CARD_FIELDS)[:limit]


def _newest(in_stock: bool, limit: int) -> Any:
    rows = Product.objects.filter(is_active=True, in_stock=in_stock).order_by("-published_at", "-id")
    return rows.values_list(*_CARD_FIELDS)[:limit]


def _prepared_cards(kind: str, build: Any, in_stock: bool, limit: int) -> list[dict[str, Any]]:
    """Card rows of a read with no parameters but the stock flag and the limit, which name it: compiled once each."""
    name = f"catalog.{kind}:{int(in_stock)}:{limit}"
    rows = prepared_rows(name, lambda: build(in_stock, limit), using=db_for_module("catalog"))
    return [dict(zip(_CARD_FIELDS, row, strict=True)) for row in rows]


def products_cards(*, product_ids: Iterable[int], add_variant: bool = False) -> tuple[ProductCard, ...]:
    """Cards of these products, in the order given, active ones only (unknown ids are left out). One query,
    however many products: recommendation slots and the like. add_variant: also the variant a one-click "Add"
    puts in the cart (add_variant_id: the first active variant in stock, None when sold out), a subquery per
    product that only a slot with an "Add" button needs; without it add_variant_id is None and in_stock (kept
    from the stock by the read model) says whether the product can be bought."""
    wanted = list(dict.fromkeys(product_ids))
    if not wanted:
        return ()
    name, build = ("catalog.cards_with_add", _cards_with_add) if add_variant else ("catalog.cards", _cards)
    rows = prepared_rows(name, build, wanted, using=db_for_module("catalog"))
    fields = (*_CARD_FIELDS, "add_variant_id") if add_variant else _CARD_FIELDS
    by_id = {row[0]: _card(dict(zip(fields, row, strict=True))) for row in rows}
    return tuple(by_id[pk] for pk in wanted if pk in by_id)


def _cards(product_ids: list[int]) -> Any:
    return Product.objects.filter(pk__in=product_ids, is_active=True).order_by().values_list(*_CARD_FIELDS)


def _cards_with_add(product_ids: list[int]) -> Any:
    first_in_stock = (
        Variant.objects.filter(product=OuterRef("pk"), is_active=True, stock__on_hand__gt=F("stock__reserved"))
        .order_by("position", "id")
        .values("pk")[:1]
    )
    return (
        Product.objects.filter(pk__in=product_ids, is_active=True)
        .order_by()
        .annotate(add_variant_id=Subquery(first_in_stock))
        .values_list(*_CARD_FIELDS, "add_variant_id")
    )


def product_suggest(*, text: str, limit: int = 8) -> tuple[Suggestion, ...]:
    """Autocomplete: categories whose name contains the text, then the best-matching product titles."""
    text = text.strip()[:SEARCH_MAX_LENGTH]
    if len(text) < 2:
        return ()
    lowered = text.lower()
    categories = [c for c in category_tree().categories if lowered in c.name.lower()]
    found = [Suggestion(c.name, c.slug, "category") for c in categories[:3]]
    rows = (
        Product.objects.filter(is_active=True)
        .filter(_search.suggest_condition(text))
        .annotate(score=_search.suggest_rank(text))
        .order_by("-score", "-popularity", "id")
        .values_list("title", "slug")[: limit - len(found)]
    )
    found += [Suggestion(title, slug, "product") for title, slug in rows]
    return tuple(found)
