#!/usr/bin/env python3
"""Serve the shop with gunicorn (DEBUG off, PostgreSQL) and measure it with wrk.

    make bench                      # or: .venv/bin/python bench/run.py --duration 10

Prints requests/s, p50 and p99 for each page, and each page's req/s as a ratio of /healthz measured in the same
run (these machines are noisy: compare ratios, not absolute numbers). Later issues add pages to PAGES.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [("healthz", "/healthz"), ("home", "/")]


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package) ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return shutil.which("wrk") or sys.exit("wrk did not install")
    sys.exit("wrk is needed: apt-get install wrk")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')  # name comes from the operator's own URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(output: str) -> dict[str, float]:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per page")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    args = parser.parse_args()

    wrk = ensure_wrk()
    database_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_bench")
    ensure_database(database_url)
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "VAR_DIR": str(ROOT / "var" / "bench"),
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESSLOG": "/dev/null",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    gunicorn = Path(python).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "-c", "config/gunicorn.conf.py", "config.wsgi"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        results = {}
        for name, path in PAGES:
            subprocess.run([wrk, "-t1", "-c4", "-d2s", base + path], capture_output=True, check=True)  # warm up
            out = subprocess.run(
                [wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", base + path],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            results[name] = parse_wrk(out)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    base_rps = results["healthz"]["rps"]
    print(f"\ngunicorn {args.workers} workers, wrk 2 threads {args.connections} connections, {args.duration}s per page")
    print(f"{'page':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'vs healthz':>12}{'non-2xx':>9}")
    for name, r in results.items():
        ratio = r["rps"] / base_rps
        print(f"{name:<12}{r['rps']:>10.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{ratio:>11.0%}{r['non2xx']:>9}")
    if any(r["non2xx"] for r in results.values()):
        sys.exit("some requests failed")


if __name__ == "__main__":
    main()
