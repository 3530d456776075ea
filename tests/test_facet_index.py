"""The facet index of category pages (catalog/facet_index.py): it gives what the SQL path gives, for any filters,
and stays right when products change through the services, as another process would see it (the index is told
nothing: it finds the changes itself, in the database)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import facet_index as fi
from catalog import listing
from catalog.data import SORTS, ListingQuery, PageOutOfRange
from catalog.models import Product
from catalog.services import (
    VariantSpec,
    category_update,
    listing_facets,
    product_create,
    product_listing,
    product_update,
    refresh_products,
    stock_set,
    variant_update,
)
from tests.concurrency import race
from tests.factories import make_brand, make_category, make_product

COLOURS = ["Navy", "Red", "Teal", "Black", "White"]
SIZES = ["XS", "S", "M", "L", "XL", "42", "7.5"]


def sql_listing(query: ListingQuery, category_id: int | None, text: str | None = None) -> tuple:
    facets = listing._facets_sql(query, category_id, text)
    return facets, _page(query, category_id, text, facets, listing._page_sql)


def index_listing(query: ListingQuery, category_id: int | None, text: str | None = None) -> tuple:
    found = listing._found(text, ranked=False)
    facets = listing._facets_indexed(fi.facet_index().current(), query, category_id, found)
    return facets, _page(query, category_id, text, facets, lambda *a: listing._page_indexed(*a)[0])


def _page(query, category_id, text, facets, read) -> tuple | None:
    num_pages = max(1, -(-facets.total // query.per_page))
    if query.page > num_pages:
        return None
    return read(query, category_id, text, (query.page - 1) * query.per_page)


def assert_same(query: ListingQuery, category_id: int | None, text: str | None = None) -> None:
    assert index_listing(query, category_id, text) == sql_listing(query, category_id, text), (query, text)


@pytest.fixture
def store(db):
    return make_store()


def make_store() -> dict:
    """Two top categories with subcategories, four brands, 90 products of random options, prices, stock,
    featured flags, popularity and dates; a few without a brand, without variants (no price) or inactive."""
    rng = random.Random(17)
    wear = make_category("Wear")
    tops, shoes = make_category("Tops", wear), make_category("Shoes", wear)
    tees = make_category("Tees", tops)
    home = make_category("Home")
    leaves = [wear, tops, shoes, tees, home]
    brands = [make_brand(name) for name in ("Kestrel", "yarrow", "Zephyr", "Alder Co")] + [None]
    now = timezone.now()
    for i in range(90):
        variants = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            options = {"Colour": rng.choice(COLOURS), "Size": rng.choice(SIZES)}
            if rng.random() < 0.3:
                options["Material"] = rng.choice(["Wool", "Cotton"])
            variants.append(
                {
                    "options": options,
                    "price": rng.choice(["9.99", "10.00", "15.50", "20.00", "20.01", "35.00", "99.90"]),
                    "stock": rng.choice([0, 0, 1, 4]),
                }
            )
        product = make_product(
            f"{rng.choice(['Warm', 'Light', 'Classic'])} {rng.choice(['Jacket', 'Boot', 'Tee', 'Lamp'])} {i:02d}",
            rng.choice(leaves),
            brand=rng.choice(brands),
            variants=variants or None,
            popularity=rng.choice([0, 5, 5, 50, 300]),  # ties, to exercise the tie-breaks by id
            is_featured=rng.random() < 0.2,
            is_active=rng.random() > 0.08,
            published_at=now - timedelta(days=rng.choice([1, 2, 2, 30])),
        )
        if not variants:  # no variant: no price, not in stock
            product.variants.all().delete()
            refresh_products(product_ids=[product.pk], publish_events=False)
    return {"wear": wear, "tops": tops, "shoes": shoes, "tees": tees, "home": home, "rng": rng}


def random_query(rng: random.Random) -> ListingQuery:
    options = []
    if rng.random() < 0.5:
        options.append(("colour", tuple(rng.sample([*COLOURS, "Mauve"], rng.choice([1, 2])))))
    if rng.random() < 0.3:
        options.append(("size", tuple(rng.sample(SIZES, rng.choice([1, 3])))))
    if rng.random() < 0.1:
        options.append(("material", ("Wool",)))
    low = rng.choice([None, None, Decimal("10"), Decimal("15.505"), Decimal("20.01")])
    high = rng.choice([None, None, Decimal("20"), Decimal("35.00"), Decimal("9.999")])
    return ListingQuery(
        sort=rng.choice(list(SORTS)),
        page=rng.choice([1, 1, 2, 3]),
        per_page=12,
        brands=tuple(rng.sample(["kestrel", "yarrow", "zephyr", "alder-co", "nobody"], rng.choice([0, 0, 1, 2]))),
        price_min=low,
        price_max=high,
        in_stock=rng.random() < 0.3,
        options=tuple(options),
    )


# ---------------------------------------------------------------- the same results as SQL


def test_the_index_gives_what_sql_gives_for_any_filters_sort_and_page(store):
    rng = store["rng"]
    categories = [None, *(store[name].pk for name in ("wear", "tops", "shoes", "tees", "home"))]
    for _ in range(150):
        assert_same(random_query(rng), rng.choice(categories))


@pytest.mark.parametrize("text", ["jacket", "warm boot", "kestrel", "jakcet", "lamp 0", "no such thing", "e"])
def test_a_search_gives_what_sql_gives_for_any_filters_sort_and_page(store, text):
    rng = store["rng"]
    for _ in range(25):
        assert_same(random_query(rng), rng.choice([None, None, None, store["wear"].pk]), text)
    for sort in SORTS:
        assert_same(ListingQuery(sort=sort, per_page=12), None, text)


def test_every_sort_and_page_of_a_category_matches_sql_with_sold_out_products_last(store):
    for sort in SORTS:
        for page in (1, 2, 3, 4):
            assert_same(ListingQuery(sort=sort, page=page, per_page=12), store["wear"].pk)
    items, _ = listing._page_indexed(ListingQuery(per_page=48), store["wear"].pk, None, 0)
    stock = [card.in_stock for card in items]
    assert stock == sorted(stock, reverse=True), "available products come first"


def test_the_public_functions_use_the_index_and_keep_their_results(store, settings):
    settings.CATALOG_FACET_INDEX = True
    query = ListingQuery(sort="price_asc", page=2, per_page=12, options=(("colour", ("Navy", "Red")),))
    indexed = product_listing(query=query, category_id=store["wear"].pk)
    settings.CATALOG_FACET_INDEX = False
    assert product_listing(query=query, category_id=store["wear"].pk) == indexed
    with pytest.raises(PageOutOfRange):
        product_listing(query=ListingQuery(page=99), category_id=store["wear"].pk)


def test_a_page_costs_a_fixed_number_of_queries_with_the_index_fresh(store, settings):
    settings.CATALOG_FACET_INDEX = True
    # (a chosen value that no product has costs the query that finds its label, as on the SQL path)
    query = ListingQuery(options=(("colour", ("Navy",)),), in_stock=True, price_min=Decimal("10"))
    product_listing(query=query, category_id=store["wear"].pk)  # builds the index
    with CaptureQueriesContext(connection) as facets_queries:
        facets = listing_facets(query=query, category_id=store["wear"].pk)
    with CaptureQueriesContext(connection) as page_queries:
        product_listing(query=query, category_id=store["wear"].pk, facets=facets)
    assert len(facets_queries) == 1, "the freshness check; the counts come from memory"
    assert len(page_queries) == 1, "the cards, with the freshness check in the same statement"


def test_a_page_counted_with_its_own_facets_costs_one_query_and_gives_what_sql_gives(store, settings):
    """Without facets given (the page cache off), product_listing counts on the snapshot its page is read from:
    one statement in all, the cards with the freshness check."""
    settings.CATALOG_FACET_INDEX = True
    rng = store["rng"]
    categories = [None, *(store[name].pk for name in ("wear", "tops", "shoes", "tees", "home"))]
    product_listing(query=ListingQuery(), category_id=None)  # builds the index
    for _ in range(60):
        query, category_id = random_query(rng), rng.choice(categories)
        facets, items = sql_listing(query, category_id)
        if items is None:
            with pytest.raises(PageOutOfRange):
                product_listing(query=query, category_id=category_id)
            continue
        with CaptureQueriesContext(connection) as queries:
            got = product_listing(query=query, category_id=category_id)
        assert (got.items, got.total, got.facets, got.in_stock_count) == (
            items,
            facets.total,
            facets.facets,
            facets.in_stock_count,
        ), query
        assert (got.price_floor, got.price_ceiling) == (facets.price_floor, facets.price_ceiling)
        if items and not query.options and not query.brands:  # (a chosen value no product has: its label)
            assert len(queries) == 1, [q["sql"][:80] for q in queries.captured_queries]


def test_a_page_that_only_products_added_since_the_index_looked_fill_is_served(built):
    """The snapshot a page is counted on is checked before it says "no such page": another process may have added
    the products that make this page exist."""
    query = ListingQuery(per_page=12)
    before = product_listing(query=query, category_id=built["home"].pk)
    for i in range(12):
        make_product(f"Added Lamp {i}", built["home"], variants=[{"options": {"Colour": "Teal"}, "price": "5.00",
                                                                  "stock": 2}])  # fmt: skip
    later = product_listing(query=ListingQuery(per_page=12, page=before.num_pages + 1), category_id=built["home"].pk)
    assert later.items
    assert later.total == before.total + 12
    changed = first_active(built["home"])
    product_update(product_id=changed.pk, title="Lamp Renamed Since")
    again = product_listing(query=ListingQuery(per_page=48), category_id=built["home"].pk)
    assert "Lamp Renamed Since" in {card.title for card in again.items}


# ---------------------------------------------------------------- staying right when products change


def other_process_agrees(query: ListingQuery, category_id: int | None) -> None:
    """The index that was already built (patched since) gives what SQL gives, and what a new process (an index
    built now) gives."""
    patched = index_listing(query, category_id)
    assert patched == sql_listing(query, category_id)
    fi.reset()
    assert index_listing(query, category_id) == patched


@pytest.fixture
def built(store):
    """The index built before the changes the test makes."""
    fi.facet_index().current()
    return store


def first_active(category) -> Product:
    return Product.objects.filter(is_active=True, category=category).exclude(variants=None).order_by("id").first()


def test_a_price_change_moves_the_product_in_price_order_and_the_price_filter(built):
    product = first_active(built["tees"])
    sku = product.variants.order_by("id").first().sku
    before = fi.facet_index().current()
    for variant in product.variants.all():
        variant_update(sku=variant.sku, price=Decimal("1.00") if variant.sku == sku else Decimal("500.00"))
    query = ListingQuery(sort="price_asc", per_page=12, price_max=Decimal("2"))
    facets, items = index_listing(query, built["wear"].pk)
    assert [card.id for card in items] == [product.pk]
    assert facets.price_floor == Decimal("1.00")
    assert fi.facet_index().current() is not before, "patched, not served stale"
    other_process_agrees(ListingQuery(sort="price_desc", per_page=12), built["wear"].pk)
    other_process_agrees(query, built["wear"].pk)


def test_a_product_going_out_of_stock_moves_behind_the_available_ones(built):
    product = Product.objects.filter(is_active=True, in_stock=True, category=built["tees"]).order_by("id").first()
    for variant in product.variants.all():
        stock_set(sku=variant.sku, on_hand=0)
    facets, _ = index_listing(ListingQuery(in_stock=True), built["tees"].pk)
    items, _ = listing._page_indexed(ListingQuery(per_page=48), built["tees"].pk, None, 0)
    assert product.pk not in {card.id for card in items if card.in_stock}
    assert facets.total == Product.objects.filter(is_active=True, in_stock=True, category=built["tees"]).count()
    other_process_agrees(ListingQuery(in_stock=True), built["tees"].pk)
    other_process_agrees(ListingQuery(sort="newest", per_page=48), built["tees"].pk)


def test_a_deactivated_product_leaves_the_counts_and_the_pages(built):
    product = first_active(built["shoes"])
    total = index_listing(ListingQuery(), built["shoes"].pk)[0].total
    product_update(product_id=product.pk, is_active=False)
    facets, items = index_listing(ListingQuery(per_page=48), built["shoes"].pk)
    assert facets.total == total - 1
    assert product.pk not in {card.id for card in items}
    other_process_agrees(ListingQuery(per_page=48), built["shoes"].pk)


def test_a_product_deleted_lately_is_gone_at_once(built):
    product = first_active(built["shoes"])
    total = index_listing(ListingQuery(), built["shoes"].pk)[0].total
    Product.objects.filter(pk=product.pk).delete()  # as the admin deletes: no service, no updated_at
    assert index_listing(ListingQuery(), built["shoes"].pk)[0].total == total - 1
    other_process_agrees(ListingQuery(per_page=48), built["shoes"].pk)


def test_a_product_deleted_long_after_its_last_change_is_found_by_the_card_read_and_the_count(store, monkeypatch):
    long_ago = timezone.now() - fi.WINDOW * 10
    Product.objects.update(updated_at=long_ago)  # every change is out of the window
    fi.facet_index().current()
    query = ListingQuery(per_page=48)
    first = listing._page_indexed(query, store["wear"].pk, None, 0)[0][0]
    Product.objects.filter(pk=first.id).delete()
    # the page finds the card gone, rebuilds and reads again
    assert first.id not in {card.id for card in listing._page_indexed(query, store["wear"].pk, None, 0)[0]}
    fi.facet_index().current()
    Product.objects.filter(pk=Product.objects.filter(is_active=True).order_by("-id")[0].pk).delete()
    monkeypatch.setattr(fi, "VERIFY_SECONDS", 0.0)  # the count of active products is compared now
    assert index_listing(query, None) == sql_listing(query, None)


def test_a_new_product_is_counted_and_listed(built):
    kestrel = make_brand("Kestrel")
    created = product_create(
        title="Brand New Boot",
        category_id=built["shoes"].pk,
        brand_slug=kestrel.slug,
        is_featured=True,
        popularity=10**6,
        variants=[VariantSpec(sku="NEW-1", price=Decimal("12.34"), options=(("Colour", "Mauve"),), on_hand=3)],
    )
    query = ListingQuery(options=(("colour", ("Mauve",)),))
    facets, items = index_listing(query, built["wear"].pk)
    assert [card.id for card in items] == [created.id]
    assert ("o_colour", "Mauve", 1) in {(f.key, v.value, v.count) for f in facets.facets for v in f.values}
    assert index_listing(ListingQuery(), built["wear"].pk)[1][0].id == created.id, "the most popular first"
    other_process_agrees(query, built["wear"].pk)
    other_process_agrees(ListingQuery(sort="newest", per_page=12), None)


def test_a_category_moved_or_a_product_moved_changes_the_subtrees(built):
    before = index_listing(ListingQuery(), built["home"].pk)[0].total
    in_tees = index_listing(ListingQuery(), built["tees"].pk)[0].total
    category_update(category_id=built["tees"].pk, parent_id=built["home"].pk)
    assert index_listing(ListingQuery(), built["home"].pk)[0].total == before + in_tees
    other_process_agrees(ListingQuery(per_page=48), built["wear"].pk)
    other_process_agrees(ListingQuery(per_page=48), built["home"].pk)
    product = first_active(built["shoes"])
    product_update(product_id=product.pk, category_id=built["home"].pk)
    assert index_listing(ListingQuery(), built["home"].pk)[0].total == before + in_tees + 1
    other_process_agrees(ListingQuery(per_page=48), built["shoes"].pk)
    category_update(category_id=built["home"].pk, is_active=False)  # hidden: its subtree is its own products only
    other_process_agrees(ListingQuery(), built["home"].pk)


def test_a_change_committed_after_a_later_one_is_still_seen(built):
    """Transactions commit out of updated_at order: a change stamped before the latest one the index has seen,
    but committed after it, is within the window the index looks at again."""
    late, early = Product.objects.filter(is_active=True, in_stock=True, is_featured=True).order_by("id")[:2]
    product_update(product_id=late.pk, popularity=7)
    index_listing(ListingQuery(), None)  # the index has seen `late`
    stamped = timezone.now() - timedelta(seconds=30)  # before `late`'s change, within the window
    Product.objects.filter(pk=early.pk).update(popularity=10**7, updated_at=stamped)
    assert index_listing(ListingQuery(), None)[1][0].id == early.pk
    other_process_agrees(ListingQuery(), None)


def test_many_changes_at_once_rebuild_instead_of_patching(built, monkeypatch, caplog):
    monkeypatch.setattr(fi, "PATCH_MAX", 3)
    for product in Product.objects.filter(is_active=True, category=built["home"])[:5]:
        product_update(product_id=product.pk, popularity=999)
    with caplog.at_level("INFO", logger="catalog.facet_index"):
        fi.facet_index().current()
    assert "facet index built" in caplog.text
    other_process_agrees(ListingQuery(per_page=48), built["home"].pk)


def test_a_rebuild_is_due_after_rebuild_seconds(built, monkeypatch):
    before = fi.facet_index().current()
    monkeypatch.setattr(fi, "REBUILD_SECONDS", 0.0)
    assert fi.facet_index().current() is not before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_threads_reading_pages_while_others_change_products_share_one_index_and_end_right(store):
    """gunicorn's threads share the process's index: readers keep a snapshot while writers' changes patch in a new
    one; nobody fails, and at the end the index is what SQL and a new process say."""
    changed = list(Product.objects.filter(is_active=True).exclude(variants=None).order_by("id")[:12])
    fi.facet_index().current()
    sorts = list(SORTS)

    def attempt(i: int) -> str:
        if i < 4:
            for product in changed[i::4]:
                product_update(product_id=product.pk, popularity=1000 + i)
                variant = product.variants.order_by("id").first()
                variant_update(sku=variant.sku, price=Decimal("3.00") + i)
                stock_set(sku=variant.sku, on_hand=i % 2)
            return "wrote"
        for round_ in range(10):
            query = ListingQuery(sort=sorts[(i + round_) % len(sorts)], price_max=Decimal("50"))
            product_listing(query=query, category_id=store["wear"].pk)
            product_listing(query=query, text="jacket")
        return "read"

    outcomes = race(attempt, threads=10)
    assert sorted(outcomes) == ["read"] * 6 + ["wrote"] * 4, outcomes
    for category_id in (None, store["wear"].pk):
        other_process_agrees(ListingQuery(per_page=48), category_id)
        other_process_agrees(ListingQuery(sort="price_asc", price_max=Decimal("50")), category_id)
