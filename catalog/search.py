"""Product search. Private to catalog; catalog.listing (product_listing, product_suggest) and catalog.projection
(which keeps the indexes in step) use it.

Every word of the query must match, as a word, a prefix or any substring, or with a typo:

- PostgreSQL: full-text search over a weighted vector (title A, brand B, description C) with every word a prefix
  (`blue:* & speak:*`), ranked with ts_rank, OR'd with trigram word similarity of the query with the title, so
  that typos ("bluetoth speker") still find things. Both are served by GIN indexes (migration 0002).
- SQLite 3.34+: an FTS5 table with the trigram tokenizer (catalog_product_fts, migration 0008; one row per active
  product: title, brand, description) finds each word as a substring of any of the three (so prefixes too),
  OR'd, for typos, with trigram closeness: one MATCH of all the query words' trigrams over title and brand gives
  candidates (the best FUZZY_CANDIDATES by bm25), and a candidate matches when its words share at least
  FUZZY_THRESHOLD of the query's trigrams (word_similarity below, after pg_trgm's). Words shorter than 3
  letters, and SQLite older than 3.34, fall back to a substring test on the columns (no typos then).

"Did you mean": did_you_mean() replaces each query word that is neither a word of an active product's title or
brand nor the start of one by the closest such word (difflib, ratio >= SUGGEST_CUTOFF). The vocabulary is cached
and forgotten whenever refresh_products runs.
The query text only ever reaches SQL as a bound parameter.
"""

from __future__ import annotations

import bisect
import difflib
import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVector,
    TrigramWordSimilarity,
)
from django.core.cache import cache
from django.db import connections
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.expressions import Expression, RawSQL

from kernel.db import db_for_module

CONFIG = "english"
MAX_TERMS = 8
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits: safe in a tsquery and in an FTS5 string

FTS_TABLE = "catalog_product_fts"
# Constant SQL: the query text only ever goes in as a bound parameter.
_FTS_CANDIDATES = (
    "SELECT rowid, title, brand FROM catalog_product_fts WHERE catalog_product_fts MATCH %s ORDER BY rank LIMIT %s"
)
_FTS_IDS = "SELECT rowid FROM catalog_product_fts WHERE catalog_product_fts MATCH %s"
_FTS_DELETE = "DELETE FROM catalog_product_fts WHERE rowid IN (SELECT value FROM json_each(%s))"
_FTS_INSERT = "INSERT INTO catalog_product_fts (rowid, title, brand, description) VALUES (%s, %s, %s, %s)"
FTS_MIN_SQLITE = (3, 34, 0)  # the trigram tokenizer
FUZZY_CANDIDATES = 500
FUZZY_THRESHOLD = 0.6  # pg_trgm's word_similarity_threshold, which the %> operator uses
VOCABULARY_CACHE_KEY = "catalog:search-vocabulary:v1"
VOCABULARY_SECONDS = 600
SUGGEST_CUTOFF = 0.75


def _alias() -> str:
    return db_for_module("catalog")


def _postgres() -> bool:
    return connections[_alias()].vendor == "postgresql"


def fts_available() -> bool:
    """Whether catalog's database is SQLite with the trigram FTS5 table (migration 0008 makes it there)."""
    return connections[_alias()].vendor == "sqlite" and sqlite3.sqlite_version_info >= FTS_MIN_SQLITE


def terms(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)][:MAX_TERMS]


def trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams of one word: padded with two spaces in front and one behind."""
    padded = f"  {word.lower()} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True)
class Match:
    """Which products match a search text, and how well (higher is better)."""

    condition: Q
    rank: Expression


def prepare(text: str) -> Match:
    """The condition and rank of `text`: one query on SQLite (the typo candidates), none on PostgreSQL."""
    words = terms(text)
    if not words:
        return Match(Q(pk__in=[]), Value(0.0, output_field=FloatField()))
    if _postgres():
        return _postgres_match(words)
    return _sqlite_match(words)


def _postgres_match(words: list[str]) -> Match:
    cleaned = " ".join(words)
    prefixes = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config=CONFIG)
    return Match(
        condition=Q(search_vector=prefixes) | Q(title__trigram_word_similar=cleaned),
        rank=SearchRank(F("search_vector"), prefixes) + TrigramWordSimilarity(cleaned, "title") * Value(0.5),
    )


def word_similarity(words: list[str], own: set[str]) -> float:
    """How much of the query's trigrams a text's words share: for each query word the trigrams it shares with
    its closest word of the text, over all the query's trigrams (close to pg_trgm's word_similarity)."""
    query = set().union(*(trigrams(w) for w in words))
    if not query or not own:
        return 0.0
    own_trigrams = [trigrams(u) for u in own]
    shared = sum(max(len(trigrams(w) & t) for t in own_trigrams) for w in words)
    return min(1.0, shared / len(query))


def _fuzzy(words: list[str]) -> dict[int, float]:
    """The products whose title or brand is close to the query words (word_similarity >= FUZZY_THRESHOLD), with
    that similarity: candidates from one FTS5 MATCH of the words' trigrams, the best by bm25, scored here."""
    grams = sorted({w[i : i + 3] for w in words for i in range(len(w) - 2)})
    if not grams:
        return {}
    expression = "{title brand} : (" + " OR ".join(f'"{g}"' for g in grams) + ")"
    with connections[_alias()].cursor() as cursor:
        cursor.execute(_FTS_CANDIDATES, [expression, FUZZY_CANDIDATES])
        rows = cursor.fetchall()
    found = {}
    for pk, title, brand in rows:
        score = word_similarity(words, set(_WORD.findall(f"{title} {brand}".lower())))
        if score >= FUZZY_THRESHOLD:
            found[pk] = score
    return found


def _sqlite_match(words: list[str]) -> Match:
    """Every word a substring of title, brand or description (FTS5), or the words close to the title's or
    brand's (trigrams, for typos), as on PostgreSQL. Ranked: title 3, brand 2, description 1 per word, 3 more
    for the whole text in the title, plus up to 2 for trigram closeness."""
    cleaned = " ".join(words)
    fts = fts_available()
    exact = Q()
    for w in words:
        if fts and len(w) >= 3:
            exact &= Q(pk__in=RawSQL(_FTS_IDS, [f'"{w}"']))  # noqa: S611 (constant SQL, bound text)
        else:
            exact &= Q(title__icontains=w) | Q(brand_name__icontains=w) | Q(description__icontains=w)
    close = _fuzzy(words) if fts else {}
    condition = (exact | Q(pk__in=sorted(close))) if close else exact

    scores: list[Expression] = [
        Case(
            When(title__icontains=w, then=Value(3.0)),
            When(brand_name__icontains=w, then=Value(2.0)),
            When(description__icontains=w, then=Value(1.0)),
            default=Value(0.0),
            output_field=FloatField(),
        )
        for w in words
    ]
    if len(words) > 1:
        scores.append(
            Case(When(title__icontains=cleaned, then=Value(3.0)), default=Value(0.0), output_field=FloatField())
        )
    if close:  # in steps of 0.1, so that the SQL stays short
        by_score: dict[float, list[int]] = defaultdict(list)
        for pk, score in close.items():
            by_score[round(2.0 * score, 1)].append(pk)
        scores.append(
            Case(
                *(When(pk__in=sorted(pks), then=Value(s)) for s, pks in sorted(by_score.items(), reverse=True)),
                default=Value(0.0),
                output_field=FloatField(),
            )
        )
    rank = scores[0]
    for score in scores[1:]:
        rank = rank + score
    return Match(condition=condition, rank=rank)


def suggest_condition(text: str) -> Q:
    cleaned = " ".join(terms(text))
    if not cleaned:
        return Q(pk__in=[])
    if _postgres():
        return Q(title__istartswith=cleaned) | Q(title__trigram_word_similar=cleaned)
    return Q(title__icontains=cleaned)


def suggest_rank(text: str) -> Expression:
    cleaned = " ".join(terms(text))
    if _postgres():
        return TrigramWordSimilarity(cleaned, "title")
    return Case(When(title__istartswith=cleaned, then=Value(1.0)), default=Value(0.5), output_field=FloatField())


# ---------------------------------------------------------------- "did you mean"


def vocabulary(product_model) -> tuple[str, ...]:
    """The words of active products' titles and brands, sorted (cached; refresh_products forgets it)."""
    words = cache.get(VOCABULARY_CACHE_KEY)
    if words is None:
        found: set[str] = set()
        for title, brand in product_model.objects.filter(is_active=True).values_list("title", "brand_name"):
            found.update(w.lower() for w in _WORD.findall(f"{title} {brand}") if len(w) >= 2)
        words = tuple(sorted(found))
        cache.set(VOCABULARY_CACHE_KEY, words, VOCABULARY_SECONDS)
    return words


def forget_vocabulary() -> None:
    cache.delete(VOCABULARY_CACHE_KEY)


def _known(word: str, words: tuple[str, ...]) -> bool:
    """The word, or a word it starts (a prefix), is in the sorted vocabulary."""
    at = bisect.bisect_left(words, word)
    return at < len(words) and words[at].startswith(word)


def did_you_mean(product_model, text: str) -> str:
    """The query with each unknown word replaced by the closest word of the catalog; "" when nothing changes."""
    words = terms(text)
    if not words:
        return ""
    vocab = vocabulary(product_model)
    corrected = []
    for w in words:
        if w.isdigit() or _known(w, vocab):
            corrected.append(w)
            continue
        close = difflib.get_close_matches(w, vocab, n=1, cutoff=SUGGEST_CUTOFF)
        corrected.append(close[0] if close else w)
    return " ".join(corrected) if corrected != words else ""


# ---------------------------------------------------------------- keeping the indexes in step


def update_index(product_model, product_ids: Iterable[int]) -> None:
    """Recompute the search index of these products: the weighted vector on PostgreSQL, the FTS5 rows (active
    products only) on SQLite. Runs inside refresh_products' transaction."""
    ids = sorted(set(product_ids))
    if not ids:
        return
    if _postgres():
        product_model.objects.filter(pk__in=ids).update(
            search_vector=SearchVector("title", weight="A", config=CONFIG)
            + SearchVector("brand_name", weight="B", config=CONFIG)
            + SearchVector("description", weight="C", config=CONFIG)
        )
        return
    if not fts_available():
        return
    with connections[_alias()].cursor() as cursor:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cursor.execute(_FTS_DELETE, [json.dumps(chunk)])
            rows = product_model.objects.filter(pk__in=chunk, is_active=True).values_list(
                "pk", "title", "brand_name", "description"
            )
            cursor.executemany(_FTS_INSERT, list(rows))
