"""Offline evaluation of the recommendation models on held-out baskets (`manage.py recs_evaluate`).

Pure numpy/scipy, no Django, so it runs on any purchase log: the complete-journey grocery data or the shop's own
ledger. The protocol:

- split by time: every line before the cut trains the models (all customers); each basket of a customer with training
  history that starts at or after the cut is a held-out basket;
- every model ranks EVERY item of the training catalogue for the customer (no sampled negatives, Krichene and Rendle,
  KDD 2020); the item-to-item models sum, over the customer's training items, the related scores of each item;
- protocol "new" (next basket, new items: the usual one for item-to-item lists, which exist to show what the customer
  has not bought) leaves out of both the ranking and the held-out basket the items the customer bought in training,
  and skips baskets with nothing new; protocol "repeat" keeps them;
- hit-rate@k: share of held-out baskets with at least one of their items in the top k; NDCG@k: binary relevance,
  ideal DCG over min(k, |basket|); coverage: share of the training catalogue that appears in at least one top k.

Memory stays bounded: customers are scored in batches, a sparse (batch x items) @ (items x items) product gives a
dense block of batch x items scores at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

PROTOCOLS = ("new", "repeat")
# Below any real score: ties and items no seed relates to are ordered by popularity, as the shop's slots fill empty
# places with best sellers.
_TIEBREAK = 1e-6


@dataclass(frozen=True)
class Interactions:
    """One purchase line per row: who (customer key), what (item key), which basket, when (any sortable number)."""

    users: np.ndarray
    items: np.ndarray
    baskets: np.ndarray
    times: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.users)
        if not (len(self.items) == len(self.baskets) == len(self.times) == n):
            raise ValueError("users, items, baskets and times must have the same length")

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> Interactions:
        return Interactions(self.users[mask], self.items[mask], self.baskets[mask], self.times[mask])


@dataclass(frozen=True)
class Split:
    """The training matrix (customers x items, binary) and the held-out baskets as lists of item columns."""

    train: sp.csr_matrix
    age_days: sp.csr_matrix  # same pattern as train: days from the customer's last purchase of the item to the cut
    user_keys: np.ndarray  # row -> customer key
    item_keys: np.ndarray  # column -> item key
    test_rows: np.ndarray  # one per held-out basket: the customer's row in train
    test_items: tuple[np.ndarray, ...]  # one per held-out basket: its item columns (only items known in training)
    test_sizes: np.ndarray  # one per held-out basket: its number of distinct items, unknown ones included
    train_lines: int
    test_lines: int


@dataclass(frozen=True)
class ModelResult:
    name: str
    hit_rate: float
    ndcg: float
    coverage: float
    build_seconds: float
    baskets: int
    basket_hits: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    basket_ndcgs: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of a - b over the same held-out baskets and the half-width of its 95% interval (normal approximation
    of the paired differences), to tell a real gap from noise."""
    if len(a) != len(b):
        raise ValueError("the two models were not evaluated on the same baskets")
    if len(a) < 2:
        return float((a - b).mean()) if len(a) else 0.0, float("inf")
    diff = a - b
    return float(diff.mean()), float(1.96 * diff.std(ddof=1) / np.sqrt(len(diff)))


def quantile_cut(times: np.ndarray, share: float) -> float:
    """The time before which `share` of the lines fall (the train part of a split by time)."""
    if not 0 < share < 1:
        raise ValueError("the train share must be between 0 and 1")
    return float(np.quantile(times, share))


def time_split(data: Interactions, *, cut: float) -> Split:
    """Lines before `cut` train; baskets starting at or after it, of customers with training history, are held out.

    A basket belongs to the test part as a whole, by its first line's time, so a basket is never cut in two.
    """
    basket_keys, basket_of_line = np.unique(data.baskets, return_inverse=True)
    basket_start = np.full(len(basket_keys), np.inf)
    np.minimum.at(basket_start, basket_of_line, data.times.astype(float))
    in_test = basket_start[basket_of_line] >= cut
    train, test = data.take(~in_test), data.take(in_test)

    user_keys, rows = np.unique(train.users, return_inverse=True)
    item_keys, cols = np.unique(train.items, return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_keys), len(item_keys)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    # Days from each (customer, item)'s last purchase to the cut: lines sorted by pair then time, the last one wins.
    last = np.lexsort((train.times, cols, rows))
    pair = rows[last].astype(np.int64) * max(len(item_keys), 1) + cols[last]
    is_last = np.r_[pair[1:] != pair[:-1], True] if len(pair) else np.zeros(0, dtype=bool)
    age = sp.csr_matrix(
        (
            np.maximum((cut - train.times[last][is_last]) / 86400.0, 0.0).astype(np.float32) + np.float32(1e-3),
            (rows[last][is_last], cols[last][is_last]),
        ),
        shape=matrix.shape,
    )

    # Held-out baskets of customers seen in training, each as its item columns (items unseen in training cannot be
    # ranked by any model but still count in the basket's size, so they cost every model the same).
    known_user = np.isin(test.users, user_keys)
    test = test.take(known_user)
    test_rows: list[int] = []
    test_items: list[np.ndarray] = []
    test_sizes: list[int] = []
    if len(test):
        order = np.lexsort((test.items, test.baskets))
        t_baskets, t_items, t_users = test.baskets[order], test.items[order], test.users[order]
        starts = np.flatnonzero(np.r_[True, t_baskets[1:] != t_baskets[:-1]])
        ends = np.r_[starts[1:], len(t_baskets)]
        user_rows = np.searchsorted(user_keys, t_users[starts])
        item_pos = np.searchsorted(item_keys, t_items)
        item_pos_clipped = np.minimum(item_pos, len(item_keys) - 1)
        known_item = (item_pos < len(item_keys)) & (item_keys[item_pos_clipped] == t_items)
        for start, end, row in zip(starts, ends, user_rows, strict=True):
            test_rows.append(int(row))
            test_items.append(np.unique(item_pos[start:end][known_item[start:end]]).astype(np.int64))
            test_sizes.append(len(np.unique(t_items[start:end])))
    return Split(
        train=matrix,
        age_days=age,
        user_keys=user_keys,
        item_keys=item_keys,
        test_rows=np.asarray(test_rows, dtype=np.int64),
        test_items=tuple(test_items),
        test_sizes=np.asarray(test_sizes, dtype=np.int64),
        train_lines=len(train),
        test_lines=len(test),
    )


# ---------------------------------------------------------------- metrics


def hit_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int) -> float:
    """1.0 when any relevant item is among the first k ranked, else 0.0."""
    relevant = set(relevant)
    return 1.0 if any(item in relevant for item in list(ranked)[:k]) else 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int) -> float:
    """Binary-relevance NDCG@k: sum of 1/log2(rank + 1) over the relevant items in the top k, divided by the same sum
    for an ideal ranking of min(k, |relevant|) relevant items first. 0.0 when there is nothing relevant."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(rank + 2) for rank, item in enumerate(list(ranked)[:k]) if item in relevant)
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return float(dcg / ideal)


def _batch_metrics(
    top: np.ndarray, baskets: Sequence[np.ndarray], ideal_sizes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised hit and NDCG for one batch: top is (baskets x k) item columns, ideal_sizes the relevant counts."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_cum = np.r_[0.0, np.cumsum(discounts)]
    hits = np.zeros(len(baskets))
    ndcgs = np.zeros(len(baskets))
    for i, relevant in enumerate(baskets):
        found = np.isin(top[i], relevant)
        if found.any():
            hits[i] = 1.0
            ndcgs[i] = discounts[found].sum() / ideal_cum[min(k, int(ideal_sizes[i]))]
    return hits, ndcgs


# ---------------------------------------------------------------- models


Scorer = Callable[[sp.csr_matrix], np.ndarray]


def related_matrix(indices: np.ndarray, scores: np.ndarray, n_items: int) -> sp.csr_matrix:
    """The top-K table as a sparse items x items matrix; slots marked -1 and scores not above 0 (no better than
    chance) are left out, so summing over a customer's items adds only real relations."""
    rows = np.repeat(np.arange(indices.shape[0]), indices.shape[1])
    cols = indices.ravel().astype(np.int64)
    data = scores.ravel().astype(np.float32)
    keep = (cols >= 0) & (data > 0)
    return sp.csr_matrix((data[keep], (rows[keep], cols[keep])), shape=(n_items, n_items))


def normalise_rows(related: sp.csr_matrix) -> sp.csr_matrix:
    """Each item's related scores divided by its best one, so every seed item weighs the same in the sum."""
    best = related.max(axis=1).toarray().ravel()
    best[best == 0] = 1.0
    return sp.diags(1.0 / best).astype(np.float32) @ related


def item_to_item_scorer(related: sp.csr_matrix, popularity: np.ndarray, *, prior: float = 0.0) -> Scorer:
    """Summed related scores of the customer's items. `prior` > 0 blends in popularity: each customer's sums are
    divided by their best one and `prior` x popularity / best seller added, so a staple the customer has never
    bought can outrank a weak relation (0: popularity only breaks ties)."""
    top = max(float(popularity.max(initial=0)), 1.0)
    tiebreak = (_TIEBREAK * popularity / top).astype(np.float32)
    share = (popularity / top).astype(np.float32)

    def score(seeds: sp.csr_matrix) -> np.ndarray:
        sums = (seeds @ related).toarray()
        if prior > 0:
            best = sums.max(axis=1, keepdims=True)
            best[best <= 0] = 1.0
            return sums / best + np.float32(prior) * share + tiebreak
        return sums + tiebreak

    return score


def popularity_scorer(popularity: np.ndarray) -> Scorer:
    base = popularity.astype(np.float32)

    def score(seeds: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(base, (seeds.shape[0], len(base))).copy()

    return score


def evaluate(
    split: Split,
    scorer: Scorer,
    *,
    name: str,
    k: int = 10,
    protocol: str = "new",
    build_seconds: float = 0.0,
    half_life_days: float | None = None,
    batch_users: int = 256,
    progress: Callable[[int], None] | None = None,
) -> ModelResult:
    """Rank every item for every customer with held-out baskets and compute the metrics over those baskets.

    `half_life_days`: weigh each of the customer's training items by 2 ** (-days since they last bought it / half
    life) before summing its related scores (None: every item weighs 1). `progress` is called with the number of
    customers done after each batch.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    baskets = held_out(split, protocol=protocol)
    train = split.train
    n_items = train.shape[1]
    k = min(k, n_items)
    users = np.unique(baskets.rows)
    by_user = np.argsort(baskets.rows, kind="stable")
    sorted_rows = baskets.rows[by_user]
    recommended = np.zeros(n_items, dtype=bool)
    hits = np.zeros(len(baskets.rows))
    ndcgs = np.zeros(len(baskets.rows))
    for start in range(0, len(users), batch_users):
        batch = users[start : start + batch_users]
        seeds = train[batch]
        if half_life_days:
            weighted = split.age_days[batch].copy()
            weighted.data = np.exp2(-weighted.data / np.float32(half_life_days)).astype(np.float32)
            scores = np.asarray(scorer(weighted), dtype=np.float32)
        else:
            scores = np.asarray(scorer(seeds), dtype=np.float32)
        if protocol == "new":
            bought_rows, bought_cols = seeds.nonzero()
            scores[bought_rows, bought_cols] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        recommended[top.ravel()] = True
        lo = np.searchsorted(sorted_rows, batch[0], side="left")
        hi = np.searchsorted(sorted_rows, batch[-1], side="right")
        chosen = by_user[lo:hi]
        batch_pos = np.searchsorted(batch, baskets.rows[chosen])
        h, n = _batch_metrics(top[batch_pos], [baskets.items[i] for i in chosen], baskets.ideal_sizes[chosen], k)
        hits[chosen], ndcgs[chosen] = h, n
        if progress is not None:
            progress(len(batch))
    count = len(baskets.rows)
    return ModelResult(
        name=name,
        hit_rate=float(hits.mean()) if count else 0.0,
        ndcg=float(ndcgs.mean()) if count else 0.0,
        coverage=float(recommended.sum() / n_items) if n_items else 0.0,
        build_seconds=build_seconds,
        baskets=count,
        basket_hits=hits,
        basket_ndcgs=ndcgs,
    )


@dataclass(frozen=True)
class HeldOut:
    rows: np.ndarray  # the customer's row in train, per basket
    items: tuple[np.ndarray, ...]  # the relevant item columns, per basket
    ideal_sizes: np.ndarray  # how many relevant items the basket has, items unknown to training included


def held_out(split: Split, *, protocol: str) -> HeldOut:
    """The baskets that count under the protocol and what in each is relevant.

    "repeat": every held-out basket, all its items. "new": the items the customer did not buy in training (an item
    unknown to training is new to everyone); a basket with nothing new is left out.
    """
    train = split.train
    rows: list[int] = []
    items_out: list[np.ndarray] = []
    sizes: list[int] = []
    for row, items, size in zip(split.test_rows, split.test_items, split.test_sizes, strict=True):
        unknown = int(size) - len(items)
        if protocol == "new":
            bought = train.indices[train.indptr[row] : train.indptr[row + 1]]
            items = np.setdiff1d(items, bought, assume_unique=True)
        relevant = len(items) + unknown
        if relevant == 0:
            continue
        rows.append(int(row))
        items_out.append(items)
        sizes.append(relevant)
    return HeldOut(np.asarray(rows, dtype=np.int64), tuple(items_out), np.asarray(sizes, dtype=np.int64))


def timed(build: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = build()
    return result, time.perf_counter() - started
