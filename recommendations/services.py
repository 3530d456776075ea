"""Public face of recommendations: the functions other modules may call (keyword-only, plain values in and out).

Reads (ranked product ids; the caller filters out what it must not show, so each returns up to 3 x limit):
related_products, related_to_products, best_sellers, customer_products. The build: recs_build (also
`manage.py recs_build`, nightly in Celery, and after RECS_REBUILD_EVERY paid orders). A read whose database is
down raises RecommendationsUnavailable: callers degrade (show nothing) instead of failing the page.
Recently viewed (signed-in customers; visitors' views stay in the shop's session): recently_viewed_add,
recently_viewed_merge, recently_viewed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import DatabaseError
from django.utils import timezone

from kernel.db import atomic, db_for_module
from recommendations.build import BuildBusy, BuildReport
from recommendations.models import BestSeller, Purchase, RecentlyViewed, Related

__all__ = [
    "BuildBusy",
    "BuildReport",
    "RecommendationsUnavailable",
    "best_sellers",
    "customer_products",
    "recently_viewed",
    "recently_viewed_add",
    "recently_viewed_merge",
    "recs_build",
    "related_products",
    "related_to_products",
]

MODULE = "recommendations"
SPARE = 3  # reads return up to SPARE x limit ids, so the caller's filtering leaves enough


class RecommendationsUnavailable(Exception):
    """The recommendations' database could not be read."""


@contextmanager
def _reading() -> Iterator[str]:
    try:
        yield db_for_module(MODULE)
    except DatabaseError as exc:
        raise RecommendationsUnavailable(str(exc)) from exc


def related_products(*, product_id: int, limit: int = 12) -> tuple[int, ...]:
    """The products most related to `product_id`, best first (one query)."""
    with _reading() as alias:
        rows = Related.objects.using(alias).filter(product_id=product_id).order_by("rank")[: limit * SPARE]
        return tuple(rows.values_list("related_id", flat=True))


def related_to_products(*, product_ids: Sequence[int], limit: int = 12) -> tuple[int, ...]:
    """The products most related to a set of products (a cart, a customer's history): each candidate's scores
    summed over the seeds, best first, the seeds themselves left out (one query)."""
    seeds = {int(p) for p in product_ids}
    if not seeds:
        return ()
    with _reading() as alias:
        rows = Related.objects.using(alias).filter(product_id__in=seeds).values_list("related_id", "score")
        totals: dict[int, float] = defaultdict(float)
        for related_id, score in rows:
            if related_id not in seeds:
                totals[related_id] += score
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(product_id for product_id, _ in ranked[: limit * SPARE])


def best_sellers(*, category_id: int | None, limit: int = 12) -> tuple[int, ...]:
    """The best sellers of a category (and the categories below it), or of the whole shop (None): one query."""
    with _reading() as alias:
        rows = BestSeller.objects.using(alias).filter(category_id=category_id or BestSeller.WHOLE_SHOP)
        return tuple(rows.order_by("rank")[: limit * SPARE].values_list("product_id", flat=True))


def customer_products(*, user_id: int, limit: int = 20) -> tuple[int, ...]:
    """What the customer bought (paid, not cancelled orders), latest first, each product once (one query)."""
    with _reading() as alias:
        rows = Purchase.objects.using(alias).filter(user_id=user_id).order_by("-paid_at", "-order_id", "product_id")
        seen: dict[int, None] = {}
        for product_id in rows.values_list("product_id", flat=True)[: limit * 10]:
            seen.setdefault(product_id, None)
            if len(seen) >= limit:
                break
        return tuple(seen)


def recs_build(*, progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Rebuild the related products and best sellers from the ledger, in one swap. BuildBusy if one runs."""
    from recommendations.build import recs_build as build

    return build(progress=progress)


# ---- recently viewed (recsslots) ----
RECENTLY_VIEWED_KEPT = 30  # per customer; older views are dropped as new ones come


def recently_viewed_add(*, user_id: int, product_id: int) -> None:
    """Record that the customer just viewed this product. Viewing it again moves it to the front."""
    recently_viewed_merge(user_id=user_id, product_ids=[product_id])


def recently_viewed_merge(*, user_id: int, product_ids: Sequence[int]) -> None:
    """Record these views, latest first (a visitor's session list on sign-in): the first becomes the latest."""
    ids = list(dict.fromkeys(product_ids))
    if not ids:
        return
    now = timezone.now()
    try:
        with atomic(module="recommendations"):
            for offset, product_id in enumerate(ids):  # the first given gets the latest time
                RecentlyViewed.objects.update_or_create(
                    user_id=user_id, product_id=product_id,
                    defaults={"viewed_at": now - timezone.timedelta(microseconds=offset)},
                )  # fmt: skip
            stale = RecentlyViewed.objects.filter(user_id=user_id).order_by("-viewed_at", "-id")[RECENTLY_VIEWED_KEPT:]
            old_ids = list(stale.values_list("id", flat=True))
            if old_ids:
                RecentlyViewed.objects.filter(id__in=old_ids).delete()
    except DatabaseError as error:
        raise RecommendationsUnavailable(str(error)) from error


def recently_viewed(*, user_id: int, limit: int = 12) -> tuple[int, ...]:
    """The products the customer viewed, latest first."""
    try:
        rows = (
            RecentlyViewed.objects.using(db_for_module("recommendations"))
            .filter(user_id=user_id)
            .order_by("-viewed_at", "-id")
            .values_list("product_id", flat=True)[:limit]
        )
        return tuple(rows)
    except DatabaseError as error:
        raise RecommendationsUnavailable(str(error)) from error
