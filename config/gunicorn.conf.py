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
# facet index (1.5 s of CPU at 100,000 products), which at 2,000 requests was a worker's every 10 s at full load.
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
    """The app is loaded (preload_app), before the workers fork: move every object it made so far out of the
    garbage collector's reach (gc.freeze). The workers' full collections then walk only what requests made, not
    Django's and the shop's whole import-time heap, and the shared pages are not copied by the collector's writes."""
    gc.collect()
    gc.freeze()


def post_worker_init(worker) -> None:
    """Each worker builds catalog's facet index (category pages and search) before it takes requests, rather than in
    its first shopper's request: about 1.5 s of CPU at 100,000 products, again whenever max_requests recycles it."""
    import logging

    from django.db import connections

    from catalog.services import listing_index_warm

    try:
        listing_index_warm()
    except Exception:  # the database not there yet: the first request builds it instead
        logging.getLogger("gunicorn.error").warning("facet index not built at start", exc_info=True)
    finally:
        connections.close_all()
