"""Seed what the API benchmark reads: 300 orders of 1 to 3 lines (placed through orders.services, so they are
real orders with reservations and history), then print a fresh API key with every scope.

    DATABASE_URL=... python manage.py shell -c "import bench.api_seed as s; s.main()"
"""

from __future__ import annotations

import random

from accounts.services import API_SCOPES, api_key_create
from catalog.services import product_detail, sitemap_products
from orders.services import OrderError, order_by_key

ORDERS = 300
ADDRESS = {"full_name": "Bench Buyer", "line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin",
           "country": "DE"}  # fmt: skip


def variant_ids(limit: int = 200) -> list[int]:
    ids: list[int] = []
    for slug, _ in sitemap_products()[:300]:
        detail = product_detail(slug=slug)
        ids += [v.id for v in detail.variants if v.available > 20]
        if len(ids) >= limit:
            break
    return ids


def main() -> None:
    from orders.services import order_place

    rng = random.Random(7)
    pool = variant_ids()
    made = 0
    for n in range(ORDERS):
        key = f"bench-api-{n}"
        if order_by_key(idempotency_key=key) is not None:
            continue
        lines = [(vid, rng.randint(1, 2)) for vid in rng.sample(pool, rng.randint(1, 3))]
        try:
            order_place(idempotency_key=key, lines=lines, shipping_method="standard", shipping_address=ADDRESS,
                        email=f"buyer{n % 40}@example.com", reservation_ttl_seconds=60)  # fmt: skip
            made += 1
        except OrderError:
            continue
        except Exception as exc:  # catalog's OutOfStock or UnavailableItem: skip the order
            print(f"skipped an order: {exc}")
            continue
    _, token = api_key_create(name="bench", scopes=API_SCOPES)
    print(f"orders added: {made}")
    print(f"key: {token}")
