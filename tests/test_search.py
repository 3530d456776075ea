"""Search that forgives, on SQLite (FTS5 trigram table) and PostgreSQL (full text + pg_trgm): typos, prefixes,
"did you mean", available products before sold-out ones, and the index following the catalog."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from catalog.models import Product
from catalog.services import (
    ListingQuery,
    product_listing,
    product_update,
    products_featured,
    products_newest,
)
from tests.factories import make_brand, make_category, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf():
    audio = make_category("Audio")
    lamps = make_category("Lamps")
    soundwave, kestrel = make_brand("Soundwave"), make_brand("Kestrel")
    now = timezone.now()
    return {
        "audio": audio,
        "lamps": lamps,
        "speaker": make_product(
            "Soundwave Bluetooth Speaker", audio, brand=soundwave, description="Loud and small.", popularity=10
        ),
        "cable": make_product("Kestrel Cable", audio, brand=kestrel, description="Charges a phone.", popularity=20),
        # the same relevance for "lamp" (same words, same places), the sold-out one more popular and newer
        "lamp": make_product(
            "Aurora Lamp", lamps, description="Reading light.", popularity=10, is_featured=True,
            published_at=now - datetime.timedelta(days=2),
        ),
        "gone": make_product(
            "Boreal Lamp", lamps, description="Reading light.", popularity=90, is_featured=True,
            published_at=now - datetime.timedelta(days=1),
            variants=[{"options": {}, "price": "5.00", "stock": 0}],
        ),
    }  # fmt: skip


def titles(listing) -> list[str]:
    return [card.title for card in listing.items]


def search(text: str):
    return product_listing(query=ListingQuery(), text=text)


# ---------------------------------------------------------------- typos and prefixes


@pytest.mark.parametrize("text", ["speker", "bluetoth speker", "blue", "Bluetooth", "soundw speak", "SPEAKR"])
def test_typos_and_prefixes_find_the_bluetooth_speaker(shelf, text):
    assert titles(search(text))[:1] == ["Soundwave Bluetooth Speaker"]


def test_a_typo_does_not_find_unrelated_products(shelf):
    assert titles(search("speker")) == ["Soundwave Bluetooth Speaker"]
    assert titles(search("lamp")) == ["Aurora Lamp", "Boreal Lamp"]


def test_nonsense_finds_nothing_and_suggests_a_real_word_only_when_one_is_close(shelf):
    nonsense = search("xqzvw")
    assert (nonsense.total, nonsense.did_you_mean) == (0, "")
    swapped = search("spaeker")  # two letters swapped: too far for the search, close enough for a suggestion
    assert (swapped.total, swapped.did_you_mean) == (0, "speaker")
    swapped = search("bleutooth speaker")
    assert (swapped.total, swapped.did_you_mean) == (0, "bluetooth speaker"), "known words are kept"
    assert search("bluetoth speker").did_you_mean == "bluetooth speaker", "few results: a spelling is offered"
    assert search("speaker").did_you_mean == "", "nothing to correct"
    assert search("blue").did_you_mean == "", "a prefix of a catalog word is no typo"


# ---------------------------------------------------------------- available before sold out


def test_sold_out_ranks_below_available_with_the_same_relevance(shelf):
    assert titles(search("lamp")) == ["Aurora Lamp", "Boreal Lamp"]
    assert titles(product_listing(query=ListingQuery(), category_id=shelf["lamps"].pk)) == ["Aurora Lamp",
                                                                                           "Boreal Lamp"]  # fmt: skip
    assert [c.title for c in products_featured()] == ["Aurora Lamp", "Boreal Lamp"]
    assert [c.title for c in products_newest()][-1] == "Boreal Lamp", "the newest, but sold out: last"


def test_explicit_sorts_keep_sold_out_last_too(shelf):
    cheap = product_listing(query=ListingQuery(sort="price_asc"), category_id=shelf["lamps"].pk)
    assert titles(cheap) == ["Aurora Lamp", "Boreal Lamp"]
    newest = product_listing(query=ListingQuery(sort="newest"), category_id=shelf["lamps"].pk)
    assert titles(newest) == ["Aurora Lamp", "Boreal Lamp"]


# ---------------------------------------------------------------- the index follows the catalog


def test_the_index_follows_a_renamed_and_a_deactivated_product(shelf):
    speaker = shelf["speaker"]
    product_update(product_id=speaker.pk, title="Soundwave Party Box")
    assert titles(search("speaker")) == []
    assert titles(search("party")) == ["Soundwave Party Box"]
    assert titles(search("partx box")) == ["Soundwave Party Box"]
    assert search("bluetoth").did_you_mean == "", "the old title's words are gone from the vocabulary"
    assert search("partx").did_you_mean == "party"

    product_update(product_id=speaker.pk, is_active=False)
    assert titles(search("party")) == []
    assert search("partx").did_you_mean == ""
    product_update(product_id=speaker.pk, is_active=True)
    assert titles(search("party")) == ["Soundwave Party Box"]


def test_sqlite_index_holds_exactly_the_active_products(shelf):
    if connection.vendor != "sqlite":
        pytest.skip("the FTS5 table exists on SQLite only")
    Product.objects.filter(pk=shelf["cable"].pk).update(is_active=False)
    from catalog.services import refresh_products

    refresh_products(product_ids=[shelf["cable"].pk], publish_events=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rowid, title FROM catalog_product_fts ORDER BY rowid")
        rows = cursor.fetchall()
    expected = list(Product.objects.filter(is_active=True).order_by("pk").values_list("pk", "title"))
    assert [tuple(r) for r in rows] == expected
    assert shelf["cable"].pk not in [r[0] for r in rows]


def test_prefixes_match_in_every_field(shelf):
    """A prefix of a later title word ("spea"), or of a word of the description ("charg")."""
    assert titles(search("soundwave spea")) == ["Soundwave Bluetooth Speaker"]
    assert titles(search("charg")) == ["Kestrel Cable"], "descriptions match by prefix too"


# ---------------------------------------------------------------- the page


def test_search_page_offers_did_you_mean_as_a_link(client, shelf):
    page = client.get("/search/", {"q": "spaeker"}).content.decode()
    assert "Nothing matches" in page
    assert 'Did you mean <a href="/search/?q=speaker">speaker</a>?' in page
    typo = client.get("/search/", {"q": "bleutooth speaker"}).content.decode()
    assert 'Did you mean <a href="/search/?q=bluetooth%20speaker">bluetooth speaker</a>?' in typo
    found = client.get("/search/", {"q": "bluetoth speker"}).content.decode()
    assert "Soundwave Bluetooth Speaker" in found
    assert 'Did you mean <a href="/search/?q=bluetooth%20speaker">' in found, "few results: a spelling too"
    found = client.get("/search/", {"q": "bluetooth speaker"}).content.decode()
    assert "Did you mean" not in found
    assert "Soundwave Bluetooth Speaker" in found


@pytest.mark.postgres
def test_postgres_connections_open_with_the_search_threshold_and_no_extra_statement():
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW pg_trgm.word_similarity_threshold")
        assert cursor.fetchone()[0] == "0.45"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_planner_knows_the_typo_match_is_dear_so_common_words_use_the_indexes():
    """At its default cost the planner read a common word's matches (6,000 of 100,000 products) with a sequential
    scan running pg_trgm's comparison on every title, 9x slower than the GIN indexes (catalog migration 0010)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT procost FROM pg_proc WHERE proname = 'word_similarity_commutator_op'")
        assert cursor.fetchone()[0] == 100


@pytest.mark.parametrize("sort", ["relevance", "price_asc"])
def test_a_search_page_reads_its_matches_once_and_shows_what_precounted_facets_give(shelf, sort):
    """Without facets given (no page cache), the page and its counts come from one read of the matching
    products (on PostgreSQL none: the facet index finds them in memory, and the page is its one card read);
    with them, the page is the same."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.services import listing_facets

    query = ListingQuery(sort=sort)
    search("lamp")  # the facet index built
    with CaptureQueriesContext(connection) as seen:
        alone = product_listing(query=query, text="lamp")
    # each read: the full-text query on PostgreSQL; on SQLite its typo candidates come first (ORDER BY rank)
    reads = [q["sql"] for q in seen.captured_queries if "search_vector" in q["sql"] or "ORDER BY rank" in q["sql"]]
    if connection.vendor == "postgresql":
        assert reads == []
        assert len(seen.captured_queries) == 1, seen.captured_queries
    else:
        assert len(reads) == 1, reads
    given = product_listing(query=query, text="lamp", facets=listing_facets(query=query, text="lamp"))
    assert (titles(alone), alone.total, alone.facets) == (titles(given), given.total, given.facets)
    assert titles(alone) == ["Aurora Lamp", "Boreal Lamp"]
