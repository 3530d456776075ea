"""The facet index's search on PostgreSQL (catalog/search_index.py): a search's matches and their order found in
memory are what the SQL definition of the same search gives (catalog.search.term_condition and term_rank), for
any text, and stay so when products are renamed, added or changed, as another process would see it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from catalog import facet_index as fi
from catalog import search_index
from catalog.data import SORTS, ListingQuery
from catalog.models import Product
from catalog.services import product_listing, product_update
from tests.factories import make_brand, make_category, make_product
from tests.test_facet_index import assert_same, index_listing, make_store, random_query, sql_listing

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# stop words, prefixes of one letter, typos, stems ("running" finds "run"), digits, words split by the parser
TEXTS = ["the jacket", "j", "jackte", "warm jakcet", "running", "runners shoe", "lamp 0", "05", "t-shirt", "zephy",
         "a an the", "classic tee 1", "wool", "ligth", "kestrel boot", "jack warm"]  # fmt: skip


@pytest.fixture
def store(db):
    return make_store()


@pytest.fixture
def built(store):
    fi.facet_index().current()
    return store


@pytest.mark.parametrize("text", TEXTS)
def test_a_search_in_memory_gives_what_its_sql_gives(store, text):
    rng = store["rng"]
    for _ in range(10):
        assert_same(random_query(rng), rng.choice([None, None, store["wear"].pk]), text)
    for sort in SORTS:
        assert_same(ListingQuery(sort=sort, per_page=48), None, text)


def test_random_words_and_prefixes_of_the_titles_give_what_sql_gives(store):
    rng = random.Random(5)
    words = sorted({w.lower() for t in Product.objects.values_list("title", flat=True) for w in t.split()})
    for _ in range(40):
        picked = rng.sample(words, rng.choice([1, 1, 2]))
        text = " ".join(w[: rng.randint(1, len(w))] if rng.random() < 0.5 else w for w in picked)
        if rng.random() < 0.3:  # a typo: two letters swapped
            i = rng.randrange(max(1, len(text) - 1))
            text = text[:i] + text[i + 1 : i + 2] + text[i : i + 1] + text[i + 2 :]
        assert_same(ListingQuery(sort="relevance", per_page=48), None, text)


def test_title_words_rank_above_typos_above_brand_above_description(db):
    shelf = make_category("Shelf")
    quokka = make_brand("Quokka")
    in_title = make_product("Quokka Lamp", shelf, description="A lamp.", popularity=0)
    typo_in_title = make_product("Quoka Stool", shelf, description="A stool.", popularity=10)
    in_brand = make_product("Plain Chair", shelf, brand=quokka, description="A chair.", popularity=20)
    in_text = make_product("Plain Table", shelf, description="Made by quokka people.", popularity=30)
    expected = [in_title.pk, typo_in_title.pk, in_brand.pk, in_text.pk]
    listing = product_listing(query=ListingQuery(), text="quokka")
    assert [card.id for card in listing.items] == expected
    assert [card.id for card in sql_listing(ListingQuery(), None, "quokka")[1]] == expected


def test_a_renamed_product_is_found_by_its_new_words_only(built):
    product = Product.objects.filter(is_active=True).order_by("id").first()
    product_update(product_id=product.pk, title="Wombat Parka", description="Keeps a wombat dry.")
    for text in ("wombat", "wombatt", "parka", "dry", "wombat parka"):
        found = [card.id for card in index_listing(ListingQuery(per_page=48), None, text)[1]]
        assert found == [product.pk], text
        assert_same(ListingQuery(per_page=48), None, text)
    snapshot = fi.facet_index().current()
    assert list(snapshot.search.delta) == [int(np.flatnonzero(snapshot.ids == product.pk)[0])]
    for word in product.title.lower().split():  # the old title's words: no longer this product's
        assert product.pk not in {card.id for card in index_listing(ListingQuery(per_page=48), None, word)[1]}
        assert_same(ListingQuery(per_page=48), None, word)
    fi.reset()  # another process, built after the change, agrees
    assert [card.id for card in index_listing(ListingQuery(per_page=48), None, "wombat")[1]] == [product.pk]


def test_a_change_that_leaves_the_text_alone_reads_no_words_again(built):
    product = Product.objects.filter(is_active=True).order_by("id").first()
    product_update(product_id=product.pk, popularity=123_456)
    snapshot = fi.facet_index().current()
    assert snapshot.search.delta == {}, "a popularity change: the postings still hold the product's words"
    assert index_listing(ListingQuery(), None, product.title.split()[1])[1][0].id == product.pk
    assert_same(ListingQuery(), None, product.title.split()[1])


def test_a_new_product_with_a_new_word_is_found(built):
    created = make_product("Axolotl Lantern", built["home"], description="Glows.")
    assert [card.id for card in index_listing(ListingQuery(), None, "axolotl")[1]] == [created.pk]
    assert [card.id for card in index_listing(ListingQuery(), None, "axolotol")[1]] == [created.pk], "a typo"
    assert_same(ListingQuery(), None, "axolotl lantern")


def test_more_renames_than_delta_max_rebuild_the_index(built, monkeypatch, caplog):
    monkeypatch.setattr(search_index, "DELTA_MAX", 2)
    for i, product in enumerate(Product.objects.filter(is_active=True).order_by("id")[:3]):
        product_update(product_id=product.pk, title=f"Narwhal Mitten {i}")
    with caplog.at_level("INFO", logger="catalog.facet_index"):
        snapshot = fi.facet_index().current()
    assert "facet index built" in caplog.text
    assert snapshot.search.delta == {}
    assert index_listing(ListingQuery(), None, "narwhal")[0].total == 3
    assert_same(ListingQuery(), None, "narwhal mitten")
