#!/usr/bin/env python3
"""CPU per storefront request, of the web process and of its PostgreSQL backend, in-process (the Django test
client, page cache off, no gunicorn, no wrk): what to compare between two versions when the machine's noise is
larger than the change, as throughput ratios are here.

    .venv/bin/python bench/page_cpu.py [--root DIR] [--database NAME] [--rounds N] {product,search,category}

--root runs another checkout's code (a `git worktree add` of an older commit with this .venv) against the same
database, so old and new can be measured alternately in one window. Each address is read once first (the facet
index built, the templates compiled), then --rounds times; the visitor carries no cookie, as wrk's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

SEARCHES = ["jacket", "bluetooth+speaker", "running+shoe", "linen", "kestrel", "cast+iron+pan", "yoga+mat", "bluetoth"]
CATEGORY = [f"/c/clothing/?page={p}&sort={sort}" for p, sort in ((1, "relevance"), (2, "price_asc"), (3, "newest"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", choices=["product", "search", "category"])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--database", default="shop_bench_100k")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    root = Path(args.root).resolve()
    os.environ.update(
        DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}", ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0", SHOP_PAGE_CACHE_SECONDS="0", LOG_LEVEL="WARNING",
        VAR_DIR=str(Path(__file__).resolve().parent.parent / "var" / "bench"),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
    )  # fmt: skip
    sys.path.insert(0, str(root))
    os.chdir(root)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    if args.page == "product":
        with connection.cursor() as cursor:
            cursor.execute("SELECT slug FROM catalog_product WHERE is_active ORDER BY popularity DESC, id LIMIT 20")
            paths = [f"/p/{slug}/" for (slug,) in cursor.fetchall()]
    else:
        paths = [f"/search/?q={q}" for q in SEARCHES] if args.page == "search" else CATEGORY
    client = Client()
    for path in paths:
        if client.get(path).status_code != 200:
            sys.exit(f"{path} did not answer 200")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def database_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime of the backend

    web, database = time.process_time(), database_cpu()
    for _ in range(args.rounds):
        for path in paths:
            client.cookies.clear()
            client.get(path)
    n = args.rounds * len(paths)
    print(f"{args.page} ({root.name}, {args.database}): web {(time.process_time() - web) / n * 1000:.2f} ms, "
          f"PostgreSQL {(database_cpu() - database) / n * 1000:.2f} ms of CPU per request ({n} requests)")  # fmt: skip


if __name__ == "__main__":
    main()
