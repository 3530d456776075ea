"""python manage.py seed_demo --products N [--seed S] [--reference]"""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.demo import demo_catalog_seed


class Command(BaseCommand):
    help = "Build a believable demo catalog. The same seed gives the same catalog; running it again adds nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--products", type=int, default=1000, help="how many products (default 1000)")
        parser.add_argument("--seed", type=int, default=1, help="which demo catalog (default 1)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument(
            "--reference",
            action="store_true",
            help="the slow path (batches of 500 through refresh_products, ~130 products/s) instead of the bulk one; "
            "both give the same catalog",
        )

    def handle(self, *args, products: int, seed: int, no_progress: bool, reference: bool, **options) -> None:
        if not 0 <= products <= 1_000_000:
            raise CommandError("--products must be between 0 and 1,000,000")
        started = time.monotonic()
        with tqdm(total=products, unit="product", disable=no_progress, desc="Seeding catalog") as bar:
            result = demo_catalog_seed(products=products, seed=seed, progress=bar.update, bulk=not reference)
            bar.update(products - bar.n)
        elapsed = time.monotonic() - started
        rate = f" ({result.created / elapsed:,.0f} products/s)" if result.created and elapsed else ""
        self.stdout.write(
            f"Demo catalog (seed {seed}): {result.created} products added, {result.existing} already there, "
            f"{result.categories} categories, {result.brands} brands, in {elapsed:.1f}s{rate}."
        )
