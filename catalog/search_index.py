"""The search part of the facet index (catalog.facet_index), on PostgreSQL: which active products a search's words
match, and how well, found in memory in a time that does not grow with the number of matches. Private to catalog.

A search read its matches from SQL: at 100,000 products "jacket" matched 6,500 of them, and PostgreSQL rechecked
and ranked every one (60 ms), then sent them all over (20 ms more). Here the snapshot holds what that SQL looked
at, read once from the database itself, so both give the same answer (catalog.search.Term says what a word
matches, and its SQL twin, catalog.search.term_condition, is what the facet index's own tests compare with):

- the lexemes of every product's search_vector (PostgreSQL's own english stemming: nothing is stemmed here), each
  with the best weight it has in that product (A title, B brand, C description, D none), as postings: the
  products of each lexeme in one array, the lexemes sorted, so a prefix is a range of them (bisect);
- the words of every title as to_tsvector('simple') splits them, for typos: a query word of 3 letters
  or more also matches a product with a word whose pg_trgm similarity() to it is at least FUZZY_THRESHOLD,
  found through a trigram -> words table (the vocabulary is small: a shop's titles use few distinct words);
- a hash of each product's search text, so that a patch of the snapshot re-reads the words of only the products
  whose text changed (a price or stock change leaves them alone). Those are kept beside the postings (`delta`),
  their old postings masked, until the next rebuild; more than DELTA_MAX of them and the snapshot is rebuilt.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connections

from catalog.models import Product
from catalog.search import FUZZY_THRESHOLD, Term, pg_trigrams

DELTA_MAX = 2000  # products re-read since the last build; more and the snapshot is rebuilt
CLASS_SCORES = (1, 2, 4, 10)  # a prefix matched at best with weight D, C, B, A (catalog.search.term_rank)
FUZZY_SCORE = 5  # a title word close to the query word: below a title match, above a brand match

_TABLE = Product._meta.db_table
_CLASS = (
    "CASE WHEN 'A' = ANY(u.weights) THEN 3 WHEN 'B' = ANY(u.weights) THEN 2 WHEN 'C' = ANY(u.weights) THEN 1 ELSE 0 END"
)
# Constant SQL (the table name is the model's; no value is put in the text): the whole catalog for a build (each
# lexeme or word with its products' ids, a weight class after each id's colon), some products for a patch.
_LEXEMES = (
    f"SELECT u.lexeme, string_agg(p.id::text, ','), string_agg(({_CLASS})::text, '') "  # noqa: S608
    f"FROM {_TABLE} p CROSS JOIN LATERAL unnest(p.search_vector) u WHERE p.is_active GROUP BY u.lexeme"
)
_WORDS = (
    f"SELECT w, string_agg(p.id::text, ',') FROM {_TABLE} p "  # noqa: S608
    "CROSS JOIN LATERAL unnest(tsvector_to_array(to_tsvector('simple', p.title))) w WHERE p.is_active GROUP BY w"
)
_OWN = (
    f"SELECT p.id, ARRAY(SELECT u.lexeme FROM unnest(p.search_vector) u), "  # noqa: S608
    f"ARRAY(SELECT {_CLASS} FROM unnest(p.search_vector) u), "
    f"tsvector_to_array(to_tsvector('simple', p.title)) FROM {_TABLE} p WHERE p.id = ANY(%s)"
)


class Postings:
    """Sorted keys, each with the slots of the products that have it (and a small value per slot): one array of
    all the slots, key after key (`starts[k]:starts[k + 1]` are key k's)."""

    def __init__(self, keys: Sequence[str], slots: np.ndarray, values: np.ndarray, starts: np.ndarray) -> None:
        self.keys, self.slots, self.values, self.starts = list(keys), slots, values, starts

    @classmethod
    def of(cls, rows: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> Postings:
        ordered = sorted(rows, key=lambda row: row[0])
        lengths = np.fromiter((len(row[1]) for row in ordered), dtype=np.int64, count=len(ordered))
        starts = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        slots = np.concatenate([row[1] for row in ordered]) if ordered else np.zeros(0, dtype=np.int32)
        values = np.concatenate([row[2] for row in ordered]) if ordered else np.zeros(0, dtype=np.int8)
        return cls([row[0] for row in ordered], slots.astype(np.int32), values.astype(np.int8), starts)

    def prefixed(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        """The slots (and values) of every key that starts with `prefix`: one contiguous range of the keys."""
        low = bisect.bisect_left(self.keys, prefix)
        high = bisect.bisect_left(self.keys, prefix + "\U0010ffff", low)  # past every key with this prefix
        return self.slots[self.starts[low] : self.starts[high]], self.values[self.starts[low] : self.starts[high]]

    def has(self, key: str, slot: int, value: int = 0, check_value: bool = False) -> bool:
        """Whether this slot has this key (with this value): the slots of a key are in ascending order."""
        k = bisect.bisect_left(self.keys, key)
        if k == len(self.keys) or self.keys[k] != key:
            return False
        low, high = int(self.starts[k]), int(self.starts[k + 1])
        at = low + int(np.searchsorted(self.slots[low:high], slot))
        return at < high and self.slots[at] == slot and (not check_value or self.values[at] == value)

    def of_keys(self, indexes: Iterable[int]) -> np.ndarray:
        parts = [self.slots[self.starts[k] : self.starts[k + 1]] for k in indexes]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class Own:
    """One product's search data, read again after its text changed: its lexemes with their weight class, and
    the words of its title."""

    lexemes: tuple[tuple[str, int], ...]
    words: tuple[str, ...]


class SearchIndex:
    """The search data of one snapshot (never changed once made: a patch makes another)."""

    def __init__(
        self,
        *,
        lexemes: Postings,
        words: Postings,
        counts: tuple[np.ndarray, np.ndarray],
        delta: dict[int, Own],
        grams: tuple[dict[str, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.lexemes, self.words, self.delta = lexemes, words, delta
        self.counts = counts  # per slot of the build: how many lexemes, and how many words, the postings give it
        self._stale = np.fromiter(delta, dtype=np.int64, count=len(delta))  # their postings are out of date
        self._delta_words = frozenset(word for own in delta.values() for word in own.words)
        self._grams, self._sizes = grams if grams is not None else _trigram_table(words.keys)

    # ---------------------------------------------------------------- building and patching
    @classmethod
    def build(cls, ids: np.ndarray) -> SearchIndex:
        """From the database, for a snapshot whose slot i holds product ids[i] (ids ascending). Read after the
        snapshot's own rows: a product changed in between is read again by the snapshot's next patch, and
        patched() compares what it reads with the postings."""
        with connections[Product.objects.db].cursor() as cursor:
            cursor.execute(_LEXEMES)
            lexeme_rows = cursor.fetchall()
            cursor.execute(_WORDS)
            word_rows = cursor.fetchall()

        def postings(id_text: str, classes: str | None) -> tuple[np.ndarray, np.ndarray]:
            held, slots = _slots(ids, np.array(id_text.split(","), dtype=np.int64))
            values = np.frombuffer(classes.encode(), dtype=np.uint8) - ord("0") if classes else np.zeros(len(held))
            slots, values = slots, values[held]
            order = np.argsort(slots, kind="stable")  # a key's slots ascending (Postings.has)
            return slots[order], values[order]

        lexemes = Postings.of((lexeme, *postings(id_text, classes)) for lexeme, id_text, classes in lexeme_rows)
        words = Postings.of((word, *postings(id_text, None)) for word, id_text in word_rows)
        n = len(ids)
        counts = (np.bincount(lexemes.slots, minlength=n)[:n], np.bincount(words.slots, minlength=n)[:n])
        return cls(lexemes=lexemes, words=words, counts=counts, delta={})

    def patched(self, active: dict[int, int]) -> SearchIndex | None:
        """This index after the snapshot read these active products (id -> slot) again: their search data is
        read too, and a product whose data is not what the postings hold (its text changed, or it is new) is
        kept beside them (`delta`). None: more than DELTA_MAX such products since the build (rebuild)."""
        delta = dict(self.delta)
        wanted = sorted(active)
        for start in range(0, len(wanted), 1000):
            with connections[Product.objects.db].cursor() as cursor:
                cursor.execute(_OWN, [wanted[start : start + 1000]])
                rows = cursor.fetchall()
            for pk, lexemes, classes, words in rows:
                slot, own = active[pk], Own(tuple(zip(lexemes, classes, strict=True)), tuple(words))
                if (delta[slot] == own) if slot in delta else self._in_postings(slot, own):
                    continue
                delta[slot] = own
        if len(delta) > DELTA_MAX:
            return None
        if delta == self.delta:
            return self
        grams = (self._grams, self._sizes)  # the postings' words are the build's: so is their trigram table
        return SearchIndex(lexemes=self.lexemes, words=self.words, counts=self.counts, delta=delta, grams=grams)

    def _in_postings(self, slot: int, own: Own) -> bool:
        """Whether the postings hold exactly this product's search data."""
        lexeme_counts, word_counts = self.counts
        if slot >= len(lexeme_counts):
            return False  # a product new since the build
        if lexeme_counts[slot] != len(own.lexemes) or word_counts[slot] != len(own.words):
            return False
        return all(self.lexemes.has(lexeme, slot, c, check_value=True) for lexeme, c in own.lexemes) and all(
            self.words.has(word, slot) for word in own.words
        )

    # ---------------------------------------------------------------- reads
    def match(self, terms: Sequence[Term], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Which of the n slots every term matches (booleans), and their rank: the sum over the terms of each
        term's score (catalog.search.term_rank). No terms: nothing matches."""
        matched = np.zeros(n, dtype=bool)
        total = np.zeros(n, dtype=np.int32)
        for i, term in enumerate(terms):
            score = self._score(term, n)
            matched = score > 0 if i == 0 else matched & (score > 0)
            total += score
        return matched, total

    def _score(self, term: Term, n: int) -> np.ndarray:
        best = None  # per slot the best weight class of a lexeme with the term's prefix (-1: none); all prefixes
        for prefix in term.prefixes:
            own = np.full(n, -1, dtype=np.int8)
            slots, values = self.lexemes.prefixed(prefix)
            np.maximum.at(own, slots, values)
            best = own if best is None else np.minimum(best, own)
        score = np.zeros(n, dtype=np.int32)
        if best is not None:
            score = np.where(best >= 0, np.array(CLASS_SCORES, dtype=np.int32)[np.maximum(best, 0)], 0)
        if term.fuzzy:
            close = self._close_words(term.word)
            if len(close):
                slots = self.words.of_keys(close)
                score[slots] = np.maximum(score[slots], FUZZY_SCORE)
        if len(self._stale):  # the products whose text changed since the build: their own words, not the postings
            score[self._stale] = 0
            # each distinct word of theirs compared once, however many of them share it
            close_words = {w for w in self._delta_words if _similar(term.word, w)} if term.fuzzy else set()
            for slot, own in self.delta.items():
                score[slot] = own_score(own, term, close_words)
        return score

    def _close_words(self, word: str) -> np.ndarray:
        """The vocabulary's words whose similarity() to `word` is at least FUZZY_THRESHOLD (computed as a float4, as
        pg_trgm computes it, and compared as a double, as SQL compares it)."""
        mine = pg_trigrams(word)
        found = [self._grams[gram] for gram in mine if gram in self._grams]
        if not found:
            return np.zeros(0, dtype=np.int64)
        shared = np.bincount(np.concatenate(found), minlength=len(self._sizes)).astype(np.float32)
        similarity = shared / (self._sizes + np.float32(len(mine)) - shared)
        return np.flatnonzero(similarity.astype(np.float64) >= FUZZY_THRESHOLD)


def own_score(own: Own, term: Term, close_words: frozenset[str] | set[str]) -> int:
    """A term's score for one product's own search data (the products re-read since the build); close_words: the
    words close to the term's (_similar)."""
    best = None
    for prefix in term.prefixes:
        classes = [c for lexeme, c in own.lexemes if lexeme.startswith(prefix)]
        part = max(classes, default=-1)
        best = part if best is None else min(best, part)
    score = CLASS_SCORES[best] if best is not None and best >= 0 else 0
    if term.fuzzy and score < FUZZY_SCORE and any(word in close_words for word in own.words):
        score = FUZZY_SCORE
    return score


def _trigram_table(words: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """For typos: trigram -> the indexes of the words that have it, and each word's number of trigrams."""
    grams: dict[str, list[int]] = defaultdict(list)
    sizes = []
    for k, word in enumerate(words):
        own = pg_trigrams(word)
        sizes.append(len(own))
        for gram in own:
            grams[gram].append(k)
    return {gram: np.array(ks, dtype=np.int32) for gram, ks in grams.items()}, np.array(sizes, dtype=np.float32)


def _similar(word: str, other: str) -> bool:
    mine, theirs = pg_trigrams(word), pg_trigrams(other)
    shared = np.float32(len(mine & theirs))
    return bool(float(shared / (np.float32(len(mine)) + np.float32(len(theirs)) - shared)) >= FUZZY_THRESHOLD)


def _slots(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the wanted ids the snapshot (ids ascending) holds, and their slots."""
    if not len(ids):
        return np.zeros(len(wanted), dtype=bool), np.zeros(0, dtype=np.int64)
    positions = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    held = ids[positions] == wanted
    return held, positions[held]
