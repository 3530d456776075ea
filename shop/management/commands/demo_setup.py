"""Prepare a development shop: the demo staff account (printed), the demo catalog, its vouchers and promotion, the
demo customers and their past orders (with a taste of their own: shop.demo_orders), the demo customer account
(printed) and the recommendations built from those orders."""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from tqdm import tqdm

from accounts.services import demo_superuser_ensure
from catalog.services import category_tree, demo_catalog_seed
from orders.services import vouchers_demo_seed
from recommendations.services import recs_build
from shop.demo_orders import demo_orders_seed

DEMO_STAFF_EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create (or reset) the demo staff user and load the demo catalog. Development shops only (DEBUG on)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--products", type=int, default=1000, help="demo catalog size (default 1000)")
        parser.add_argument("--orders", type=int, default=2000, help="demo past orders (default 2000; 0: none)")
        parser.add_argument("--customers", type=int, default=300, help="demo customers (default 300)")

    def handle(self, *args, products: int, orders: int, customers: int, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_setup is for development shops: it resets a superuser's password. Set DEBUG=1.")
        with tqdm(total=products, unit="product", desc="Demo catalog", disable=products == 0) as bar:
            result = demo_catalog_seed(products=products, seed=1, progress=bar.update)
            bar.update(products - bar.n)
        self.stdout.write(f"Demo catalog: {result.created} products added, {result.existing} already there.")
        roots = category_tree().roots()
        promoted = next((c for c in roots if c.slug == "home-kitchen"), roots[0] if roots else None)
        vouchers_demo_seed(
            category_id=promoted.id if promoted else None, category_name=promoted.name if promoted else ""
        )
        self.stdout.write("Demo vouchers: WELCOME10 (10 % off from €30, once per customer), FREESHIP (free delivery).")
        customer = self._orders(orders, customers) if orders > 0 and products > 0 else None
        if customer is not None:
            self._recommendations()
        user, password = demo_superuser_ensure(email=DEMO_STAFF_EMAIL)
        self.stdout.write("")
        if customer is not None:
            self.stdout.write(self.style.SUCCESS("Demo customer account, with past orders (a new password each run):"))
            self.stdout.write(f"  email:    {customer.demo_email}")
            self.stdout.write(f"  password: {customer.demo_password}")
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo staff account (a new password is made on every run):"))
        self.stdout.write("  shop:     http://127.0.0.1:8000/")
        self.stdout.write("  admin:    http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  email:    {user.email}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write("")

    def _orders(self, orders: int, customers: int):
        started = time.monotonic()
        trace = logging.getLogger("celery.app.trace")  # one line per in-process task: thousands of them here
        level = trace.level
        trace.setLevel(logging.WARNING)
        try:
            # One build of the recommendations at the end (below), not one every RECS_REBUILD_EVERY orders on the way.
            with override_settings(RECS_REBUILD_EVERY=0), tqdm(total=orders, unit="order", desc="Demo orders") as bar:
                result = demo_orders_seed(customers=customers, orders=orders, seed=1, progress=bar.update)
                bar.update(orders - bar.n)
        finally:
            trace.setLevel(level)
        self.stdout.write(
            f"Demo orders: {result.orders_created} past orders added, {result.orders_existing} already there "
            f"({result.customers} customers, {time.monotonic() - started:.1f} s)."
        )
        return result

    def _recommendations(self) -> None:
        """Build the related products and best sellers from the ledger the orders' events filled, so the shop's
        slots are full on first start."""
        with tqdm(total=1, unit="step", desc="Recommendations") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            report = recs_build(progress=progress)
        self.stdout.write(f"Recommendations built: {report}.")
