#!/usr/bin/env python3
"""Checkout benchmark: complete orders per second, end to end, then an oversell check.

    .venv/bin/python bench/checkout.py [--duration 20] [--buyers 16]      (make bench runs it after run.py)

Serves the shop with gunicorn (DEBUG off) against PostgreSQL (BENCH_DATABASE_URL, the 20k catalog of bench/run.py)
and Redis, with a real Celery worker on a queue of its own. Simulated customers, each with their own cookies, go
through the real pages: product page, add to cart, checkout details, review, place the order, pay with the test
gateway's success card on its hosted page (the gateway calls the shop back from the worker), and poll the return
page until the order is confirmed. Most products have enough stock for the whole run (a shop that runs dry
mid-run measures refusals, not orders); a few scarce ones (--scarce, the most popular) sell out early, with
buyers racing for their last units, and buyers keep picking them (refused as sold out, not counted).
Afterwards: on-hand + sold must equal the starting stock for every product used, and nothing may be negative.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookies
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, base_env, collect_static, ensure_database, free_port, seed, wait_ready

PYTHON = sys.executable
DETAILS = {"email": "bench@example.com", "saved_address": "new", "full_name": "Bench Buyer", "line1": "1 Load Street",
           "postal_code": "10115", "city": "Berlin", "country": "DE", "shipping_method": "standard"}  # fmt: skip
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMINGS: dict[str, list[float]] = {}


class Browser:
    """One buyer's HTTP/1.1 connection, kept alive between requests as a browser keeps it (gunicorn's gthread
    workers hold idle keep-alive connections without tying up a thread)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connection: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()  # the server closed an idle keep-alive connection: open a new one
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Customer:
    """A visitor with their own cookies (a new session), on their buyer's connection."""

    def __init__(self, base: str, browser: Browser) -> None:
        self.base = base
        self.browser = browser
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.step = "?"

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        began = time.monotonic()
        try:
            return self._request(path, data)
        finally:
            TIMINGS.setdefault(self.step, []).append(time.monotonic() - began)

    def _request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        if path.startswith("http"):
            path = urllib.parse.urlsplit(path)._replace(scheme="", netloc="").geturl()
        headers = {"Referer": self.base + "/", "Host": urllib.parse.urlsplit(self.base).netloc}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response, raw = self.browser.send("POST" if body is not None else "GET", path, body, headers)
        for header in response.headers.get_all("Set-Cookie") or ():
            jar = http.cookies.SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        text = raw.decode(errors="replace")
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return response.status, response.headers.get("Location", ""), text

    def buy(self, slug: str, variant_id: int) -> str:
        """One purchase; returns "ok", "sold_out" or what went wrong."""
        self.step = "product"
        self.request(f"/p/{slug}/")
        self.step = "add"
        status, _, _ = self.request("/cart/add", {"variant": variant_id, "quantity": 1, "next": "/cart/"})
        if status != 302:
            return f"add {status}"
        self.step = "details"
        status, location, _ = self.request("/checkout/", DETAILS)
        if location != "/checkout/review/":  # back to the cart: the product sold out since it was added
            return "sold_out" if location.endswith("/cart/") else f"details {status} {location}"
        self.step = "review"
        _, _, page = self.request("/checkout/review/")
        token = re.search(r'name="token" value="([^"]+)"', page)
        if not token:
            return "sold_out" if "sold out" in page or "left" in page else "review"
        self.step = "place"
        status, location, _ = self.request("/checkout/place/", {"token": token.group(1)})
        if "/payments/test-gateway/pay/" not in location:
            return "sold_out" if location.endswith("/cart/") else f"place {status} {location}"
        self.step = "gateway page"
        self.request(location)
        self.step = "pay"
        status, back, _ = self.request(location, {"card_number": "4242424242424242"})
        if not back:
            return f"pay {status}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.step = "return"
            _, _, page = self.request(back)
            if "Your order is confirmed" in page:
                return "ok"
            time.sleep(0.25)  # a browser on the "confirming" page refreshes every 2 s; this is kinder to the test
        return "not confirmed in 30 s"


def _worker_queues(queue: str) -> list[str]:
    """Every group's queue under this run's own default queue (the shop routes each task to its group's)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from kernel.celery import worker_queues

    return worker_queues(queue)


def cpu_by_program() -> dict[str, float]:
    """CPU seconds used so far by every live process, summed by program (gunicorn, celery, postgres, this client)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == os.getpid():
            name = "client"
        elif "gunicorn" in cmdline:
            name = "gunicorn"
        elif "celery" in cmdline:
            name = "celery"
        elif "postgres" in stat.split(")", 1)[0]:
            name = "postgres"
        elif "redis-server" in cmdline:
            name = "redis"
        else:
            name = "other"
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def print_profile(directory: str, completed: int) -> None:
    totals: dict[str, list[float]] = {}
    for path in Path(directory).glob("*.json"):
        for route, row in json.loads(path.read_text()).items():
            total = totals.setdefault(route, [0, 0.0, 0, 0.0])
            for i, value in enumerate(row):
                total[i] += value
    print("per route: requests, CPU ms per request (its thread), SQL statements per request, CPU ms per order")
    for route, (count, cpu, queries, _) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {route:40} {count:6d} {1000 * cpu / count:7.1f} {queries / count:6.1f} "
              f"{1000 * cpu / max(completed, 1):7.1f}")  # fmt: skip
    cpu = sum(row[1] for row in totals.values())
    queries = sum(row[2] for row in totals.values())
    print(
        f"  all: {1000 * cpu / max(completed, 1):.1f} ms of request CPU and {queries / max(completed, 1):.1f} SQL "
        "statements per completed order"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds measured, after the warm-up")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of buying before the measurement starts")
    parser.add_argument("--buyers", type=int, default=16, help="customers buying at the same time")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--products", type=int, default=40, help="how many products are on sale in the run")
    parser.add_argument("--stock", type=int, default=40, help="units of each product at the start")
    parser.add_argument("--scarce", type=int, default=4, help="products that start with --scarce-stock units")
    parser.add_argument("--scarce-stock", type=int, default=5, help="units of each scarce product at the start")
    parser.add_argument(
        "--fulfil",
        action="store_true",
        help="ORDERS_AUTO_FULFIL: a worker ships every paid order and captures its payment; checks each once",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print CPU time and SQL statements per request, by route (bench/profiled_wsgi.py)",
    )
    args = parser.parse_args()

    database = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_bench")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
    ensure_database(database)
    seed(database, 20_000)
    collect_static(database)
    with psycopg.connect(database, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT v.id, p.slug FROM catalog_variant v JOIN catalog_product p ON p.id = v.product_id
               WHERE p.is_active AND v.is_active AND v.position = 0 ORDER BY p.popularity DESC, v.id LIMIT %s""",
            (args.products,),
        ).fetchall()
        ids = [r[0] for r in rows]
        conn.execute("UPDATE catalog_reservation SET status = 'released' WHERE status = 'held'")
        scarce = ids[: args.scarce]  # the most popular: they sell out early, with buyers racing for the last units
        conn.execute("UPDATE catalog_stockitem SET on_hand = %s, reserved = 0 WHERE variant_id = ANY(%s)",
                     (args.stock, ids))  # fmt: skip
        conn.execute("UPDATE catalog_stockitem SET on_hand = %s WHERE variant_id = ANY(%s)",
                     (args.scarce_stock, scarce))  # fmt: skip
        start_stock = conn.execute(
            "SELECT sum(on_hand) FROM catalog_stockitem WHERE variant_id = ANY(%s)", (ids,)
        ).fetchone()[0]
        conn.execute("UPDATE catalog_product SET in_stock = true WHERE id IN "
                     "(SELECT product_id FROM catalog_variant WHERE id = ANY(%s))", (ids,))  # fmt: skip
        started_at = conn.execute("SELECT now()").fetchone()[0]

    port = free_port()
    queue = f"bench-{secrets.token_hex(4)}"
    env = base_env(database) | {
        "REDIS_URL": redis_url, "CACHE_KEY_PREFIX": f"bench-{secrets.token_hex(4)}", "CELERY_QUEUE": queue,
        "PAYMENTS_GATEWAY": "test", "PAYMENTS_TEST_GATEWAY_ENABLED": "1", "GUNICORN_ACCESSLOG": "/dev/null",
        "WEB_CONCURRENCY": str(args.workers), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_MAX_REQUESTS": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "ALLOWED_HOSTS": "127.0.0.1",
        "ORDERS_AUTO_FULFIL": "1" if args.fulfil else "0",
    }  # fmt: skip
    profile_dir = tempfile.mkdtemp(prefix="bench-profile-") if args.profile else ""
    env["BENCH_PROFILE_DIR"] = profile_dir
    app = "bench.profiled_wsgi" if args.profile else "config.wsgi"
    web = subprocess.Popen([str(Path(PYTHON).with_name("gunicorn")), "-c", "config/gunicorn.conf.py", app],
                           cwd=ROOT, env=env)  # fmt: skip
    celery = [PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(_worker_queues(queue)),
              "--loglevel=WARNING", "--concurrency=2", "--without-gossip", "--without-mingle"]  # fmt: skip
    worker = subprocess.Popen(celery, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        time.sleep(3)  # the worker connects to the broker
        outcomes: list[tuple[float, str]] = []  # (when it ended, what happened)
        lock = threading.Lock()
        measure_from = time.monotonic() + args.warmup
        stop_at = measure_from + args.duration

        def buyer() -> None:
            rng = random.Random()
            browser = Browser("127.0.0.1", port)
            while time.monotonic() < stop_at:
                variant_id, slug = rng.choice(rows)
                try:
                    result = Customer(base, browser).buy(slug, variant_id)
                except Exception as exc:  # a broken connection counts as a failure, not a crash
                    result = f"error {type(exc).__name__}"
                with lock:
                    outcomes.append((time.monotonic(), result))

        threads = [threading.Thread(target=buyer) for _ in range(args.buyers)]
        for t in threads:
            t.start()
        # Warm-up first (connections, caches, prepared statements), then the measured window: the purchases
        # that end in it, and the CPU every program used in it.
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before, began = cpu_by_program(), time.monotonic()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu_after, ended = cpu_by_program(), time.monotonic()
        elapsed = ended - began
        cpu_used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        for t in threads:
            t.join()
        time.sleep(3)  # let the worker finish what is in flight
        if args.fulfil:
            wait_shipped(database, started_at)
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        for process in (web, worker):
            process.wait(timeout=30)

    with psycopg.connect(database) as conn:
        on_hand, reserved = conn.execute(
            "SELECT sum(on_hand), sum(reserved) FROM catalog_stockitem WHERE variant_id = ANY(%s)", (ids,)
        ).fetchone()
        negative = conn.execute(
            "SELECT count(*) FROM catalog_stockitem WHERE variant_id = ANY(%s) AND (on_hand < 0 OR reserved < 0 "
            "OR reserved > on_hand)", (ids,)).fetchone()[0]  # fmt: skip
        sold = conn.execute(
            "SELECT coalesce(sum(l.quantity), 0) FROM orders_orderline l JOIN orders_order o ON o.id = l.order_id "
            "WHERE o.created_at >= %s AND o.status NOT IN ('pending_payment', 'cancelled') "
            "AND l.variant_id = ANY(%s)", (started_at, ids)).fetchone()[0]  # fmt: skip
        sold_out_scarce = conn.execute(
            "SELECT count(*) FROM catalog_stockitem WHERE variant_id = ANY(%s) AND on_hand = 0", (scarce,)
        ).fetchone()[0]
        statuses = dict(conn.execute(
            "SELECT status, count(*) FROM orders_order WHERE created_at >= %s GROUP BY status", (started_at,)
        ).fetchall())  # fmt: skip

    measured = [result for when, result in outcomes if began <= when < ended]
    completed = measured.count("ok")
    sold_out = measured.count("sold_out")
    other = [result for _, result in outcomes if result not in ("ok", "sold_out")]  # warm-up and tail too
    setup = f"gunicorn {args.workers} workers, 1 Celery worker (2 processes), {os.cpu_count()} cores shared"
    stocked = f"{len(ids) - len(scarce)} products x {args.stock} units and {len(scarce)} x {args.scarce_stock}"
    print(f"\n{args.buyers} buyers, {args.warmup}s of warm-up then {args.duration}s measured, {setup}, {stocked}")
    rate = completed / elapsed
    print(f"completed orders: {completed} in {elapsed:.1f}s = {rate:.1f} orders/s (target >= 30)")
    print(f"refused as sold out: {sold_out}; other outcomes: {len(other)} {sorted(set(other))[:5]}")
    print(f"orders by status: {statuses}")
    print(f"scarce products sold out: {sold_out_scarce} of {len(scarce)}")
    print(f"stock: started {start_stock}, on hand {on_hand}, reserved {reserved}, sold {sold}; "
          f"on hand + sold = {on_hand + sold}")  # fmt: skip
    print("requests per step, mean / p95 ms: " + ", ".join(
        f"{step} {len(t)} {1000 * sum(t) / len(t):.0f}/{1000 * sorted(t)[int(len(t) * 0.95)]:.0f}"
        for step, t in TIMINGS.items()
    ))  # fmt: skip
    print(f"CPU s in the measured {elapsed:.1f}s x {os.cpu_count()} cores / ms per completed order: " + ", ".join(
        f"{name} {seconds:.1f}s/{1000 * seconds / max(completed, 1):.0f}"
        for name, seconds in sorted(cpu_used.items(), key=lambda kv: -kv[1]) if seconds >= 0.05
    ))  # fmt: skip
    if profile_dir:
        print_profile(profile_dir, sum(result == "ok" for _, result in outcomes))  # its counts include the warm-up
    oversold = negative or on_hand + sold != start_stock
    print("oversell check: " + ("FAILED" if oversold else "ok (conserved, nothing negative)"))
    badly_captured = check_captures(database, started_at) if args.fulfil else 0
    if oversold or other or badly_captured:
        sys.exit(1)


def wait_shipped(database: str, started_at, timeout: float = 120) -> None:
    """With --fulfil: wait (a while at most) until the worker has shipped every paid order of the run and its
    payment is captured."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT count(*) FROM orders_order o JOIN payments_payment p ON p.id = o.payment_id "
        "WHERE o.created_at >= %s AND o.status NOT IN ('pending_payment', 'cancelled') "
        "AND (o.status <> 'shipped' OR p.amount_captured <> o.total)"
    )
    with psycopg.connect(database, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if not conn.execute(query, (started_at,)).fetchone()[0]:
                return
            time.sleep(0.5)


def check_captures(database: str, started_at) -> int:
    """With --fulfil: every paid order shipped, and its payment captured once, for its total. Returns the number
    of orders that are not."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT o.number, o.status, o.total, p.amount_captured, "
            "(SELECT count(*) FROM payments_transaction t WHERE t.payment_id = p.id AND t.kind = 'capture'), "
            "(SELECT count(*) FROM orders_shipment s WHERE s.order_id = o.id) "
            "FROM orders_order o JOIN payments_payment p ON p.id = o.payment_id "
            "WHERE o.created_at >= %s AND o.status NOT IN ('pending_payment', 'cancelled')",
            (started_at,),
        ).fetchall()
    wrong = [r for r in rows if r[1] != "shipped" or r[2] != r[3] or r[4] != 1 or r[5] != 1]
    print(f"shipped and captured once, for the order's total: {len(rows) - len(wrong)} of {len(rows)} paid orders"
          + (f"; not: {wrong[:5]}" if wrong else ""))  # fmt: skip
    return len(wrong)


if __name__ == "__main__":
    main()
