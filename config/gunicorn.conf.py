"""gunicorn settings for production: `gunicorn -c config/gunicorn.conf.py config.wsgi`. Tuned by environment."""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never takes the shop down; jitter keeps them from restarting together.
# A worker is replaced after this many requests (a guard against slow leaks). Not sooner: a new worker builds the
# facet index if the catalog changed much since the master built it (a build: seconds of CPU at 100,000 products).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
# A RAM-backed heartbeat file, as gunicorn advises for containers (a disk-backed one can stall workers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
preload_app = True


def when_ready(server) -> None:
    """The app is loaded (preload_app), before the workers fork. Build catalog's facet index (category pages and
    search: 4 to 7 s at 100,000 products with the search data) here, once: every worker, and every worker that
    max_requests brings later, starts with it and patches what changed since. Then move every object made so far
    out of the garbage collector's reach (gc.freeze): the workers' full collections walk only what requests made,
    not Django's, the shop's and the index's heap, and the shared pages are not copied by the collector's writes."""
    _warm("before the workers start")
    gc.collect()
    gc.freeze()


def post_worker_init(worker) -> None:
    """Each worker checks the facet index it inherited (one query; a patch if the catalog changed since it was
    built, a build if the master could not make one) before it takes requests, not in its first shopper's."""
    _warm("in a worker")


def _warm(where: str) -> None:
    import logging

    from django.db import connections

    from catalog.services import listing_index_warm

    try:
        listing_index_warm()
    except Exception:  # the database not there yet: the first request builds it instead
        logging.getLogger("gunicorn.error").warning("facet index not built %s", where, exc_info=True)
    finally:
        connections.close_all()  # no connection crosses the fork
