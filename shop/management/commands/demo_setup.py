"""Prepare a development shop: the demo staff account (printed), the demo catalog, its vouchers and promotion."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.services import demo_superuser_ensure
from catalog.services import category_tree, demo_catalog_seed
from orders.services import vouchers_demo_seed

DEMO_STAFF_EMAIL = "admin@example.com"


class Command(BaseCommand):
    help = "Create (or reset) the demo staff user and load the demo catalog. Development shops only (DEBUG on)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--products", type=int, default=1000, help="demo catalog size (default 1000)")

    def handle(self, *args, products: int, **options) -> None:
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
        user, password = demo_superuser_ensure(email=DEMO_STAFF_EMAIL)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo staff account (a new password is made on every run):"))
        self.stdout.write("  shop:     http://127.0.0.1:8000/")
        self.stdout.write("  admin:    http://127.0.0.1:8000/admin/")
        self.stdout.write(f"  email:    {user.email}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write("")
