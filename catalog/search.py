"""Product search. Private to catalog; catalog.listing (product_listing, product_suggest), catalog.search_index
(the facet index's search, on PostgreSQL) and catalog.projection (which keeps the indexes in step) use it.

Every word of the query must match:

- PostgreSQL: a word matches a product when a lexeme of its weighted search_vector (title A, brand B,
  description C; english stemming) starts with the word's own stem (to_tsquery('english', 'word:*'): "running"
  matches "run", "runner"), or, for a word of 3 letters or more, when a word of its title (as
  to_tsvector('simple') splits it) has a pg_trgm similarity() of at least FUZZY_THRESHOLD with it (typos).
  Stop words ("the", "and") match everything. Rank: per word its best match, 10 in a title, 5 a typo of a title
  word, 4 in the brand, 2 in the description (1 a lexeme without weight), summed over the words
  (term_rank). The facet index answers this in memory (catalog.search_index); term_condition and term_rank are
  the same definition in SQL, for the listing's SQL path (CATALOG_FACET_INDEX off) and for the tests that compare
  the two. The words' stems come from PostgreSQL itself (one statement, remembered per word: stems()).
- SQLite 3.34+: an FTS5 table with the trigram tokenizer (catalog_product_fts, migration 0008; one row per active
  product: title, brand, description) finds each word as a substring of any of the three. For typos, one MATCH
  of all the query words' trigrams over title and brand gives candidates (the best FUZZY_CANDIDATES by bm25),
  scored here per word (word_similarity). Words shorter than 3 letters, and SQLite older than 3.34, fall back
  to a substring test on the columns (no typos then).

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
from typing import Any

from django.contrib.postgres.search import SearchVector, TrigramWordSimilarity
from django.core.cache import cache
from django.db import connections
from django.db.models import BooleanField, Case, F, FloatField, Func, IntegerField, Q, Value, When
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
FUZZY_THRESHOLD = 0.45  # per query word, on both databases (PostgreSQL: pg_trgm.word_similarity_threshold)
VOCABULARY_CACHE_KEY = "catalog:search-vocabulary:v1"
VOCABULARY_SECONDS = 600
SUGGEST_CUTOFF = 0.75


def _alias() -> str:
    return db_for_module("catalog")


def postgres() -> bool:
    """Whether catalog's database is PostgreSQL (its search: full text, stems and trigrams)."""
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
    if postgres():
        return _postgres_match(text)
    return _sqlite_match(words)


@dataclass(frozen=True)
class Term:
    """What one query word matches on PostgreSQL: a lexeme starting with each of its stems (to_tsquery gives
    one, rarely several for a word its parser splits; all must match), or (fuzzy) a close title word."""

    word: str
    prefixes: tuple[str, ...]
    fuzzy: bool


_STEMS: dict[str, tuple[str, ...]] = {}  # word -> its stems: a function of the word and the database's config
_STEMS_KEPT = 20_000
_PREFIX = re.compile(r"'((?:[^']|'')*)':\*")


def stems(words: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The stems of these words as to_tsquery('english', 'word:*') gives them (() for a stop word), from the
    database: one statement for the words this process has not asked about yet."""
    found = {w: _STEMS.get(w) for w in dict.fromkeys(words)}  # .get: another thread may clear it meanwhile
    missing = [w for w, known in found.items() if known is None]
    if missing:
        with connections[_alias()].cursor() as cursor:
            cursor.execute("SELECT w, to_tsquery(%s, w || ':*')::text FROM unnest(%s::text[]) AS w", [CONFIG, missing])
            read = {w: tuple(p.replace("''", "'") for p in _PREFIX.findall(q)) for w, q in cursor.fetchall()}
        if len(_STEMS) > _STEMS_KEPT:
            _STEMS.clear()
        _STEMS.update(read)
        found.update((w, read.get(w, ())) for w in missing)
    return found  # type: ignore[return-value]


def postgres_terms(text: str) -> tuple[Term, ...]:
    """The terms of a search text on PostgreSQL, its stop words left out."""
    words = terms(text)
    stemmed = stems(words)
    found = {w: Term(w, stemmed[w], len(w) >= 3) for w in words if stemmed[w]}
    return tuple(found.values())


def _tsquery(prefixes: tuple[str, ...], weights: str = "") -> str:
    """A tsquery literal (cast, not parsed again: the stems are PostgreSQL's own) of these prefixes."""
    return " & ".join("'" + p.replace("'", "''") + "':*" + weights for p in prefixes)


class _HasPrefixes(Func):
    """search_vector @@ 'a tsquery literal' (cast, not parsed again by to_tsquery: the stems are PostgreSQL's own)."""

    template = "(%(expressions)s::tsquery)"
    arg_joiner = " @@ "
    output_field = BooleanField()


class _HasCloseWord(Func):
    """A word of the title (as to_tsvector('simple') splits it) is trigram-close to the query word: similarity()
    of at least FUZZY_THRESHOLD (a real, compared as a double, as pg_trgm compares its own thresholds)."""

    output_field = BooleanField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        (title, title_params), (word, word_params) = (compiler.compile(e) for e in self.get_source_expressions())
        words = f"unnest(tsvector_to_array(to_tsvector('simple', {title})))"
        sql = f"EXISTS (SELECT 1 FROM {words} AS w WHERE similarity(w, {word}) >= {FUZZY_THRESHOLD})"  # noqa: S608
        return sql, [*title_params, *word_params]


def _has(prefixes: tuple[str, ...], weights: str = "") -> _HasPrefixes:
    return _HasPrefixes(F("search_vector"), Value(_tsquery(prefixes, weights)))


def _close(word: str) -> _HasCloseWord:
    return _HasCloseWord(F("title"), Value(word))


def term_condition(term: Term) -> Q:
    """The products a term matches, in SQL (what catalog.search_index finds in memory). A title with a word close
    to the query word has a word_similarity() to it at least as high (the word's own trigrams are an extent of
    the title's), so `title %> word`, served by the title's trigram index, finds the candidates first."""
    if not term.fuzzy:
        return Q(_has(term.prefixes))
    return Q(_has(term.prefixes)) | (Q(title__trigram_word_similar=term.word) & Q(_close(term.word)))


def term_rank(term: Term) -> Case:
    """A term's score in SQL (catalog.search_index.CLASS_SCORES and FUZZY_SCORE): its best match."""
    whens = [When(_has(term.prefixes, "A"), then=Value(10))]
    if term.fuzzy:
        whens.append(When(_close(term.word), then=Value(5)))
    whens += [
        When(_has(term.prefixes, "AB"), then=Value(4)),
        When(_has(term.prefixes, "ABC"), then=Value(2)),
        When(_has(term.prefixes), then=Value(1)),
    ]
    return Case(*whens, default=Value(0), output_field=IntegerField())


def _postgres_match(text: str) -> Match:
    found = postgres_terms(text)
    if not found:
        return Match(Q(pk__in=[]), Value(0, output_field=IntegerField()))
    condition = Q()
    rank: Expression | None = None
    for term in found:
        condition &= term_condition(term)
        rank = term_rank(term) if rank is None else rank + term_rank(term)
    return Match(condition=condition, rank=rank)


def pg_trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams of a text: of each of its words (letters and digits), lowercased, padded with two spaces
    in front and one behind."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        found.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return found


def word_similarity(word: str, own: set[str]) -> float:
    """pg_trgm's similarity of a query word with its closest word of a text: shared trigrams over all of both."""
    mine = trigrams(word)
    best = 0.0
    for other in own:
        theirs = trigrams(other)
        best = max(best, len(mine & theirs) / len(mine | theirs))
    return best


def _fuzzy(words: list[str]) -> dict[str, dict[int, float]]:
    """For each query word of 3 or more letters, the products whose title or brand has a word close to it
    (similarity >= FUZZY_THRESHOLD), with that similarity: candidates from one FTS5 MATCH of all the words'
    trigrams, the best FUZZY_CANDIDATES by bm25, scored here."""
    long_words = [w for w in words if len(w) >= 3]
    found: dict[str, dict[int, float]] = {w: {} for w in long_words}
    grams = sorted({w[i : i + 3] for w in long_words for i in range(len(w) - 2)})
    if not grams:
        return found
    expression = "{title brand} : (" + " OR ".join(f'"{g}"' for g in grams) + ")"
    with connections[_alias()].cursor() as cursor:
        cursor.execute(_FTS_CANDIDATES, [expression, FUZZY_CANDIDATES])
        rows = cursor.fetchall()
    for pk, title, brand in rows:
        own = set(_WORD.findall(f"{title} {brand}".lower()))
        for w in long_words:
            score = word_similarity(w, own)
            if score >= FUZZY_THRESHOLD:
                found[w][pk] = score
    return found


def _sqlite_match(words: list[str]) -> Match:
    """Every word a substring of title, brand or description (FTS5) or close to a word of the title or brand
    (trigrams, for typos), as on PostgreSQL. Ranked per word: title 3, brand 2, a typo up to 2, description 1;
    3 more for the whole text in the title."""
    cleaned = " ".join(words)
    fts = fts_available()
    fuzzy = _fuzzy(words) if fts else {}
    condition = Q()
    scores: list[Expression] = []
    if len(words) > 1:
        scores.append(
            Case(When(title__icontains=cleaned, then=Value(3.0)), default=Value(0.0), output_field=FloatField())
        )
    for w in words:
        if fts and len(w) >= 3:
            anywhere = Q(pk__in=RawSQL(_FTS_IDS, [f'"{w}"']))  # noqa: S611 (constant SQL, bound text)
        else:
            anywhere = Q(title__icontains=w) | Q(brand_name__icontains=w) | Q(description__icontains=w)
        close = fuzzy.get(w, {})
        condition &= (anywhere | Q(pk__in=sorted(close))) if close else anywhere
        by_score: dict[float, list[int]] = defaultdict(list)  # in steps of 0.1, so that the SQL stays short
        for pk, score in close.items():
            by_score[round(2.0 * score, 1)].append(pk)
        scores.append(
            Case(
                When(title__icontains=w, then=Value(3.0)),
                When(brand_name__icontains=w, then=Value(2.0)),
                *(When(pk__in=sorted(pks), then=Value(s)) for s, pks in sorted(by_score.items(), reverse=True)),
                When(description__icontains=w, then=Value(1.0)),
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
    if postgres():
        return Q(title__istartswith=cleaned) | Q(title__trigram_word_similar=cleaned)
    return Q(title__icontains=cleaned)


def suggest_rank(text: str) -> Expression:
    cleaned = " ".join(terms(text))
    if postgres():
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
    if postgres():
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
