"""config.wsgi wrapped to measure each request: its thread's CPU time and SQL statements, by route.

    gunicorn -c config/gunicorn.conf.py bench.profiled_wsgi      (bench/checkout.py --profile does this)

Each worker writes its totals as JSON lines to $BENCH_PROFILE_DIR/<pid>.json when it exits.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import defaultdict

from django.db import connection
from django.urls import Resolver404, resolve

from config.wsgi import application as django_application

_totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0.0])  # requests, cpu s, queries, wall s
_lock = threading.Lock()


def _route(environ) -> str:
    path = environ.get("PATH_INFO", "")
    try:
        name = resolve(path).view_name
    except Resolver404:
        name = "404"
    return f"{environ.get('REQUEST_METHOD')} {name}"


def application(environ, start_response):
    counter = [0]

    def count(execute, sql, params, many, context):
        counter[0] += 1
        return execute(sql, params, many, context)

    cpu, wall = time.thread_time(), time.perf_counter()
    with connection.execute_wrapper(count):
        body = list(django_application(environ, start_response))
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    route = _route(environ)
    with _lock:
        row = _totals[route]
        row[0] += 1
        row[1] += cpu
        row[2] += counter[0]
        row[3] += wall
    return body


@atexit.register
def _dump() -> None:
    directory = os.environ.get("BENCH_PROFILE_DIR")
    if directory and _totals:
        with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as out:
            json.dump(dict(_totals), out)
