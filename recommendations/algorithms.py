"""Item-to-item collaborative filtering on a customers x items purchase matrix (scipy.sparse; no Django here).

    topk = related_items(matrix, k=20, method="chance")
    topk.indices[item]   # the k most related items of `item`, best first, -1 where there are fewer
    topk.scores[item]    # their scores

Two scores of a pair of items X, Y, both from the co-occurrence counts C = Bᵀ B of the binary matrix B:

- "cosine" (Linden, Smith and York 2003): C[X, Y] / sqrt(n_X n_Y), the cosine of the two items' customer vectors.
  A best seller bought by everyone has a high cosine with everything. `alpha` makes it the asymmetric cosine
  (Aiolli 2013): C[X, Y] / (n_X^alpha n_Y^(1 - alpha)); 0.5 is the cosine. Above 0.5 the seed's own popularity
  weighs more: a customer's lists sum the scores of all their items, and a staple bought by everyone (n_X large)
  then adds little to them, as an IDF would, while within one item's list the candidates are ranked by
  C / n_Y^(1 - alpha), the co-buyers discounted less for the candidate's popularity. (alpha was chosen on a
  validation split of the complete-journey data, see the README.)
- "chance" (Smith and Linden 2017): (C[X, Y] - E[X, Y]) / sqrt(E[X, Y]), how many more customers bought both than
  chance predicts, in standard deviations. E[X, Y] = sum over the customers c who bought X of
  1 - (1 - P_Y)^(|c| - 1): P_Y is Y's share of all purchases and |c| - 1 the number of c's other purchases, so a
  customer who bought many things is likely to have bought Y by chance. The sizes |c| are grouped in geometric
  bins (exact up to 8, then about 20 % wide) so E is a product of an items x bins histogram and a bins x items
  table, evaluated only at the pairs that were co-bought (the others score <= 0 and are never related).

Memory stays bounded: C is computed for one block of items at a time (blocks cut so each holds at most
`block_nnz` candidate pairs), each block is pruned to its top k at once, and only n_items x k arrays are kept.
Customers with a single purchase co-buy nothing: they count in the popularity and in P_Y, not in the pair counts.
An item bought by fewer than `min_count` customers can be in no pair with `min_count` co-buyers, so its column is
dropped before the products (its row stays empty), and so are the customers left with fewer than two of the
remaining items; every purchase still counts in the customers' sizes |c| and in P_Y, so the scores do not change.
With households as the rows (hundreds of products each) most of the catalogue is such a long tail.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

METHODS = ("chance", "cosine")
EXACT_SIZES = 8  # purchase counts up to this are their own bin; above, bins grow geometrically
BIN_RATIO = 1.2


@dataclass(frozen=True)
class TopK:
    indices: np.ndarray  # n_items x k int32, -1 where an item has fewer than k related items
    scores: np.ndarray  # n_items x k float32, 0 where indices is -1
    peak_bytes: int | None = None  # the peak of memory traced during the computation, if measured

    @property
    def pairs(self) -> int:
        return int((self.indices >= 0).sum())


def binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    """The matrix as csr float32 with every stored nonzero set to 1 (duplicates summed first)."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def popularity(matrix: sp.spmatrix) -> np.ndarray:
    """How many customers (rows) bought each item (column), as an int64 array."""
    return np.asarray(binary(matrix).sum(axis=0), dtype=np.int64).ravel()


def _size_bins(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's bin and each bin's representative purchase count (the mean of its members)."""
    top = max(int(sizes.max(initial=1)), 1)
    edges = list(range(1, EXACT_SIZES + 2))  # [1, 2, ..., 9): one bin per count up to EXACT_SIZES
    while edges[-1] <= top:
        edges.append(max(edges[-1] + 1, int(np.ceil(edges[-1] * BIN_RATIO))))
    bins = np.searchsorted(np.asarray(edges), sizes, side="right") - 1
    counts = np.bincount(bins, minlength=len(edges) - 1)
    sums = np.bincount(bins, weights=sizes, minlength=len(edges) - 1)
    rep = np.divide(sums, counts, out=np.asarray(edges[:-1], dtype=np.float64), where=counts > 0)
    return bins.astype(np.int32), rep


def _blocks(work: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive item ranges whose summed work (an upper bound of their candidate pairs) stays under budget."""
    blocks, start, total = [], 0, 0
    for i, w in enumerate(work.tolist()):
        if total and total + w > budget:
            blocks.append((start, i))
            start, total = i, 0
        total += w
    if start < len(work):
        blocks.append((start, len(work)))
    return blocks


def related_items(
    matrix: sp.spmatrix,
    *,
    k: int = 20,
    method: str = "chance",
    min_count: int = 1,
    alpha: float = 0.5,
    block_nnz: int = 1 << 23,
    measure: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> TopK:
    """The top-k related items of every item (see the module's docstring). `min_count`: a pair needs at least
    that many customers who bought both. `alpha`: the exponent of the asymmetric cosine (method "cosine" only; 0.5 is
    the plain cosine). `progress(done, total)` is called after each block of items.
    `measure`: trace the peak of memory (tracemalloc, which numpy and scipy report to) into TopK.peak_bytes."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 0 <= alpha <= 1:
        raise ValueError("alpha must be between 0 and 1")
    started = False
    if measure and not tracemalloc.is_tracing():
        tracemalloc.start()
        started = True
    if measure:
        tracemalloc.reset_peak()
    try:
        indices, scores = _related(binary(matrix), k, method, max(min_count, 1), alpha, block_nnz, progress)
        peak = tracemalloc.get_traced_memory()[1] if measure else None
    finally:
        if started:
            tracemalloc.stop()
    return TopK(indices=indices, scores=scores, peak_bytes=peak)


def _related(b, k, method, min_count, alpha, block_nnz, progress):
    n_items = b.shape[1]
    indices = np.full((n_items, k), -1, dtype=np.int32)
    scores = np.zeros((n_items, k), dtype=np.float32)
    sizes_all = np.diff(b.indptr)  # purchases per customer
    item_buyers = np.asarray(b.sum(axis=0)).ravel()  # n_X
    total = float(sizes_all.sum())
    if total == 0:
        return indices, scores
    share = item_buyers / total  # P_Y
    b = b[sizes_all > 1]  # a single purchase co-buys nothing
    sizes = np.diff(b.indptr)  # |c|, every purchase counted
    live = np.flatnonzero(item_buyers >= min_count)  # the only items that can be in a pair (see the docstring)
    if not len(live):
        return indices, scores
    b = b[:, live]  # customers x live items; from here on items are numbered among the live ones
    buyers, share = item_buyers[live], share[live]
    if method == "chance":
        bins, rep = _size_bins(sizes)
        onehot = sp.csr_matrix(
            (np.ones(len(bins), dtype=np.float32), (np.arange(len(bins)), bins)), shape=(len(bins), len(rep))
        )
        # items x bins: buyers of X per size bin (every buyer of X, also those who bought no other live item)
        hist = np.asarray((b.T @ onehot).todense(), dtype=np.float32)
        # 1 - (1 - P_Y)^(s - 1) for each item Y and bin s, with log1p for the small shares
        # items x bins, rows contiguous so a gather of the pairs' items reads whole rows
        chance = np.ascontiguousarray(
            -np.expm1(np.outer(np.log1p(-np.minimum(share, 1 - 1e-9)), rep - 1.0)), dtype=np.float32
        )
    pairing = np.diff(b.indptr) > 1  # customers with two live items or more: the only ones that co-buy
    b, sizes = b[pairing], np.diff(b.indptr)[pairing]
    bt = b.T.tocsr()  # items x customers
    work = np.asarray(bt @ sizes.astype(np.float64)).ravel().astype(np.int64)  # >= nnz of each item's row of C
    blocks = _blocks(work, block_nnz)
    live_indices = np.full((len(live), k), -1, dtype=np.int32)
    live_scores = np.zeros((len(live), k), dtype=np.float32)
    for done, (lo, hi) in enumerate(blocks, 1):
        c = bt[lo:hi] @ b  # co-buyers of the block's items with every item (csr, one row per block item)
        keep = c.data >= min_count  # the cheapest cut first: most pairs were co-bought once
        kept = np.concatenate(([0], np.cumsum(keep)))
        rows = np.repeat(np.arange(hi - lo, dtype=np.int32), kept[c.indptr[1:]] - kept[c.indptr[:-1]])
        cols, both = c.indices[keep], c.data[keep]
        del c, keep, kept
        mine = cols != rows + lo
        rows, cols, both = rows[mine], cols[mine], both[mine]
        if method == "cosine":
            if alpha == 0.5:  # the plain cosine, computed as such so ties round alike
                score = both / np.sqrt(buyers[rows + lo] * buyers[cols])
            else:
                score = both / (buyers[rows + lo] ** alpha * buyers[cols] ** (1.0 - alpha))
        else:
            expected = np.empty(len(rows), dtype=np.float32)
            step = max(1, (1 << 21) // max(hist.shape[1], 1))
            for s in range(0, len(rows), step):
                r, q = rows[s : s + step] + lo, cols[s : s + step]
                expected[s : s + step] = np.einsum("ij,ij->i", hist[r], chance[q])
            expected = np.maximum(expected, 1e-12)
            score = (both - expected) / np.sqrt(expected)
            positive = score > 0
            rows, cols, score = rows[positive], cols[positive], score[positive]
        _keep_top(rows, cols, score.astype(np.float32), lo, k, live_indices, live_scores)
        if progress is not None:
            progress(done, len(blocks))
    # back to the matrix's numbering (live is increasing, so the order of ties is kept)
    indices[live] = np.where(live_indices >= 0, live[np.maximum(live_indices, 0)], -1)
    scores[live] = live_scores
    return indices, scores


SAMPLE = 256  # a row's k-th best among its first SAMPLE candidates bounds its k-th best from below


def _keep_top(rows, cols, score, lo, k, indices, scores) -> None:
    """Write each row's k best (score descending, then item ascending) into the output arrays at row lo + row."""
    if not len(rows):
        return
    # rows arrive grouped (each row's candidates together): cut long rows at a lower bound of their k-th best
    # score (the k-th best of a sample of their candidates) so the sort below sees few more than k per row
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    lengths = np.diff(np.r_[starts, len(rows)])
    long = np.flatnonzero(lengths > max(4 * k, SAMPLE))
    if len(long):
        offsets = starts[long][:, None] + np.arange(SAMPLE)[None, :]
        bound = np.partition(score[offsets], SAMPLE - k, axis=1)[:, SAMPLE - k]
        floor = np.full(len(starts), -np.inf, dtype=np.float32)
        floor[long] = bound
        keep = score >= np.repeat(floor, lengths)
        rows, cols, score = rows[keep], cols[keep], score[keep]
    order = np.lexsort((cols, -score, rows))
    rows, cols, score = rows[order], cols[order], score[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    top = rank < k
    indices[rows[top] + lo, rank[top]] = cols[top]
    scores[rows[top] + lo, rank[top]] = score[top]
