"""Purchases in one process, for instruction counts: the checkout's Python and SQL without the noise of a server.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop_bench .venv/bin/python bench/purchase_loop.py 20

Each purchase is what a customer's browser does in bench/checkout.py (product page, add to cart, details, review,
place, the gateway's page, pay, return, the gateway's notification), through Django's test client against the
seeded bench database (bench/run.py), with tasks in-process and no cache server. Three purchases warm up first.
It prints the purchases and the wall time; under callgrind the instruction count is what to compare:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p .venv/bin/python bench/purchase_loop.py 5
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p .venv/bin/python bench/purchase_loop.py 25
    # (instructions of the 25 run - those of the 5 run) / 20 = instructions per purchase

Run it from the tree whose code is measured (it imports the project from the current directory), so two
versions can be compared against databases of their own, alternately.

BENCH_WEB_ONLY=1 measures what the web server does, as in bench/checkout.py: the workers' tasks are queued to a
Redis database nobody reads (BENCH_QUEUE_REDIS_URL, default redis://127.0.0.1:6379/5, emptied first) instead of
running in-process, the page cache is on, and the buyer comes back for each purchase (keeps its session).
bench/purchase_steps.py prints the instructions of each step.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    DEBUG="0",
    SECRET_KEY=secrets.token_urlsafe(50),
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="0",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_bench"),
    LOG_LEVEL="ERROR",
    PAYMENTS_GATEWAY="test",
    PAYMENTS_TEST_GATEWAY_ENABLED="1",
    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    VAR_DIR=str(Path(os.getcwd()) / "var" / "bench"),
    RECS_REBUILD_EVERY="0",  # the recommendations' rebuild is a job of its own, not part of a purchase
)
WEB_ONLY = os.environ.get("BENCH_WEB_ONLY") == "1"
os.environ.pop("CELERY_BROKER_URL", None)
if WEB_ONLY:
    os.environ["REDIS_URL"] = os.environ.get("BENCH_QUEUE_REDIS_URL", "redis://127.0.0.1:6379/5")
else:
    os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from payments import tasks as payment_tasks  # noqa: E402
from payments.gateways.test_gateway import TestGateway  # noqa: E402
from payments.models import TestGatewayCharge  # noqa: E402

DETAILS = {"email": "bench@example.com", "saved_address": "new", "full_name": "Bench Buyer", "line1": "1 Main St",
           "postal_code": "10115", "city": "Berlin", "country": "DE", "shipping_method": "standard"}  # fmt: skip


def pick_product() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v.id, p.slug FROM catalog_variant v JOIN catalog_product p ON p.id = v.product_id "
            "WHERE p.is_active AND v.is_active AND v.position = 0 ORDER BY p.popularity DESC, v.id LIMIT 1"
        )
        variant_id, slug = cursor.fetchone()
        cursor.execute("UPDATE catalog_stockitem SET on_hand = 1000000, reserved = 0 WHERE variant_id = %s",
                       [variant_id])  # fmt: skip
    return variant_id, slug


CLIENT = Client()  # one handler for all purchases, as a server has: a new Client loads the middleware again


def purchase(variant_id: int, slug: str) -> None:
    client = CLIENT
    if not WEB_ONLY:
        client.cookies = SimpleCookie()  # a new customer: no session, no cart
    assert client.get(f"/p/{slug}/").status_code == 200
    client.post("/cart/add", {"variant": variant_id, "quantity": "1"})
    assert client.post("/checkout/", DETAILS).status_code == 302
    page = client.get("/checkout/review/").content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    location = client.post("/checkout/place/", {"token": token})["Location"]
    assert client.get(location).status_code == 200
    charge = TestGatewayCharge.objects.get(token=location.rstrip("/").rsplit("/", 1)[1])
    back = client.post(location, {"card_number": "4242424242424242"})["Location"]
    page = client.get(back).content.decode()
    assert "confirmed" in page, page[:500]
    charge.refresh_from_db()
    body, headers = TestGateway().notification(charge)
    assert (
        client.post("/payments/notify/test/", body, content_type="application/json", headers=headers).status_code == 200
    )


def setup() -> tuple[int, str]:
    """The product bought, and the tasks nobody runs emptied (web-only)."""
    payment_tasks.test_gateway_notify.delay = lambda *args, **kwargs: None  # the loop delivers it itself
    if WEB_ONLY:
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    return pick_product()


def page_cache() -> override_settings:
    return override_settings() if WEB_ONLY else override_settings(SHOP_PAGE_CACHE_SECONDS=0)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    variant_id, slug = setup()
    with page_cache():
        for _ in range(3):
            purchase(variant_id, slug)
        started = time.perf_counter()
        for _ in range(count):
            purchase(variant_id, slug)
        elapsed = time.perf_counter() - started
    print(f"{count} purchases in {elapsed:.2f} s: {elapsed / count * 1000:.1f} ms each (wall, in-process)")


if __name__ == "__main__":
    main()
