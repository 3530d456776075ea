"""The build: the ledger into a customers x products matrix, the top-K related products of each (algorithms),
and the best sellers of the shop and of each category, written over the old ones in one transaction.

A build that fails or is killed before its transaction commits leaves the previous Related and BestSeller rows as
they were (the delete and the inserts are one transaction on the module's database): pages keep showing the last
good build, and the next build (nightly, or after RECS_REBUILD_EVERY paid orders) starts again from the ledger.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from catalog.services import product_categories
from kernel.db import atomic, db_for_module
from recommendations import algorithms
from recommendations.models import BestSeller, BuildState, Related

MODULE = "recommendations"
BATCH = 5000
BEST_SELLERS = 48  # per category, and for the whole shop


@dataclass(frozen=True)
class BuildReport:
    products: int  # products with at least one purchase
    pairs: int  # related pairs written
    seconds: float
    peak_memory_bytes: int  # the peak traced during the maths (tracemalloc)
    orders: int  # paid, not cancelled orders counted
    customers: int = 0
    max_rss_bytes: int = 0  # the process's peak resident memory so far (getrusage)
    method: str = ""

    def __str__(self) -> str:
        return (
            f"{self.orders} orders, {self.customers} customers, {self.products} products, {self.pairs} pairs "
            f"({self.method}), {self.seconds:.2f} s, peak {self.peak_memory_bytes / 2**20:.1f} MiB traced, "
            f"{self.max_rss_bytes / 2**20:.0f} MiB max RSS"
        )


class BuildBusy(Exception):
    """Another build holds the lease."""


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def ledger_matrix() -> tuple[sp.csr_matrix, np.ndarray, int]:
    """The ledger as a binary customers x products csr matrix, the product id of each column, and the number of
    orders in it. One query, read as columns."""
    from recommendations.models import Purchase

    alias = db_for_module(MODULE)
    rows = Purchase.objects.using(alias).order_by().values_list("customer_key", "product_id", "order_id")
    keys, products, orders = [], [], set()
    for key, product, order in rows.iterator(chunk_size=20000):
        keys.append(key)
        products.append(product)
        orders.add(order)
    if not keys:
        return sp.csr_matrix((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), 0
    _, row = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    product_ids, col = np.unique(np.asarray(products, dtype=np.int64), return_inverse=True)
    data = np.ones(len(row), dtype=np.float32)
    matrix = sp.csr_matrix((data, (row, col)), shape=(int(row.max()) + 1, len(product_ids)))
    return algorithms.binary(matrix), product_ids, len(orders)


def _best_sellers(product_ids: np.ndarray, buyers: np.ndarray) -> list[BestSeller]:
    order = np.lexsort((product_ids, -buyers))
    ranked = [(int(product_ids[i]), int(buyers[i])) for i in order if buyers[i] > 0]
    categories = product_categories(product_ids=[p for p, _ in ranked]) if ranked else {}
    lists: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for product_id, count in ranked:
        for category_id in (BestSeller.WHOLE_SHOP, *categories.get(product_id, ())):
            if len(lists[category_id]) < BEST_SELLERS:
                lists[category_id].append((product_id, count))
    return [
        BestSeller(category_id=category_id, product_id=product_id, buyers=count, rank=rank)
        for category_id, items in lists.items()
        for rank, (product_id, count) in enumerate(items, 1)
    ]


def _claim_lease(alias: str) -> bool:
    now = timezone.now()
    BuildState.objects.using(alias).get_or_create(pk=1)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    until = now + timedelta(seconds=settings.RECS_BUILD_LEASE_SECONDS)
    return bool(BuildState.objects.using(alias).filter(free, pk=1).update(lease_until=until))


def recs_build(*, progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Build and swap in the related products and best sellers; raises BuildBusy if another build runs."""
    alias = db_for_module(MODULE)
    if not _claim_lease(alias):
        raise BuildBusy("another build of the recommendations is running")
    try:
        return _build(alias, progress)
    finally:
        BuildState.objects.using(alias).filter(pk=1).update(lease_until=None)


def _build(alias: str, progress: Callable[[int, int], None] | None) -> BuildReport:
    started = time.perf_counter()
    method, k = settings.RECS_METHOD, settings.RECS_K
    counted = BuildState.objects.using(alias).values_list("paid_since_build", flat=True).get(pk=1)
    matrix, product_ids, orders = ledger_matrix()
    topk = algorithms.related_items(
        matrix, k=k, method=method, min_count=settings.RECS_MIN_COUNT, alpha=settings.RECS_COSINE_ALPHA,
        measure=True, progress=progress,
    )  # fmt: skip
    buyers = algorithms.popularity(matrix)
    best = _best_sellers(product_ids, buyers)
    rows, ranks = np.nonzero(topk.indices >= 0)
    related = [
        Related(
            product_id=int(product_ids[r]),
            related_id=int(product_ids[topk.indices[r, c]]),
            score=float(topk.scores[r, c]),
            rank=int(c) + 1,
        )
        for r, c in zip(rows.tolist(), ranks.tolist(), strict=True)
    ]
    with atomic(module=MODULE):
        Related.objects.using(alias).all().delete()
        BestSeller.objects.using(alias).all().delete()
        Related.objects.using(alias).bulk_create(related, batch_size=BATCH)
        BestSeller.objects.using(alias).bulk_create(best, batch_size=BATCH)
        report = BuildReport(
            products=int((buyers > 0).sum()), pairs=len(related), seconds=time.perf_counter() - started,
            peak_memory_bytes=int(topk.peak_bytes or 0), orders=orders, customers=matrix.shape[0],
            max_rss_bytes=max_rss_bytes(), method=method,
        )  # fmt: skip
        BuildState.objects.using(alias).filter(pk=1).update(
            paid_since_build=Greatest(F("paid_since_build") - counted, 0), built_at=timezone.now(),
            products=report.products, pairs=report.pairs, orders=orders, seconds=report.seconds,
            peak_memory_bytes=report.peak_memory_bytes, method=method,
        )  # fmt: skip
    return report
