"""Product search. Private to catalog; catalog.listing (product_listing, product_suggest) uses it.

PostgreSQL: full-text search over a weighted vector (title A, brand B, description C) ranked with ts_rank, OR'd
with trigram word similarity on the title so that typos ("bluetoth speker") still find things. Both are served by
GIN indexes (migration 0002). SQLite: every word must appear in title, brand or description; titles rank first.
The query text only ever reaches SQL as a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    SearchVector,
    TrigramWordSimilarity,
)
from django.db import connections
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.expressions import Expression

from kernel.db import db_for_module

CONFIG = "english"
MAX_TERMS = 8
_WORD = re.compile(r"\w+", re.UNICODE)


def _postgres() -> bool:
    return connections[db_for_module("catalog")].vendor == "postgresql"


def terms(text: str) -> list[str]:
    return _WORD.findall(text)[:MAX_TERMS]


def condition(text: str) -> Q:
    """Which products match `text`."""
    words = terms(text)
    if not words:
        return Q(pk__in=[])
    if _postgres():
        cleaned = " ".join(words)
        query = SearchQuery(cleaned, search_type="plain", config=CONFIG)
        return Q(search_vector=query) | Q(title__trigram_word_similar=cleaned)
    match = Q()
    for word in words:
        match &= Q(title__icontains=word) | Q(brand_name__icontains=word) | Q(description__icontains=word)
    return match


def rank(text: str) -> Expression:
    """How well a matching product fits `text` (higher is better)."""
    words = terms(text)
    cleaned = " ".join(words)
    if _postgres():
        query = SearchQuery(cleaned, search_type="plain", config=CONFIG)
        return SearchRank(F("search_vector"), query) + TrigramWordSimilarity(cleaned, "title") * Value(0.5)
    return Case(
        When(title__icontains=cleaned, then=Value(3.0)),
        When(title__icontains=words[0] if words else "", then=Value(2.0)),
        When(brand_name__icontains=words[0] if words else "", then=Value(1.5)),
        default=Value(1.0),
        output_field=FloatField(),
    )


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


def update_vectors(product_model, product_ids: Iterable[int]) -> None:
    """Recompute the weighted search vector of these products (PostgreSQL only)."""
    if not _postgres():
        return
    product_model.objects.filter(pk__in=list(product_ids)).update(
        search_vector=SearchVector("title", weight="A", config=CONFIG)
        + SearchVector("brand_name", weight="B", config=CONFIG)
        + SearchVector("description", weight="C", config=CONFIG)
    )
