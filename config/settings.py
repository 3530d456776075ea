"""Settings for every environment, read from the environment.

Embedded defaults give a development shop with no services: SQLite under var/, a local-memory cache, tasks run
in-process after commit, email to the console, media on the filesystem. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis. With DEBUG off the process refuses to start without a real SECRET_KEY and ALLOWED_HOSTS.
The README lists every variable.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR") or BASE_DIR / "var")

# The modules of ARCHITECTURE.md, bottom layer first.
SHOP_MODULES = ["kernel", "accounts", "catalog", "payments", "orders", "recommendations", "webhooks", "shop"]

# ---------------------------------------------------------------- core and security
DEBUG = env_bool("DEBUG", False)

# Used only with DEBUG on. With DEBUG off the process will not start with it (see below).
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-never-use-it-in-production-0123456789"  # noqa: S105 (refused when DEBUG is off)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the shop needs a secret key of at least 50 random characters, "
            'for example: python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif not DEBUG and (
    SECRET_KEY == DEVELOPMENT_SECRET_KEY
    or SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "SECRET_KEY is the development key or too weak. With DEBUG off use at least 50 random characters."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is not set. With DEBUG off list the shop's host names, comma-separated.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "config.views.csrf_failure"
# How many reverse proxies stand in front of the shop (0: none). Sets where the client's IP address is read from,
# which sign-in throttling per address depends on.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

if not DEBUG:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP inside the cluster
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------- applications
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    *SHOP_MODULES,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.ApiConditionalGetMiddleware",
    "config.api.IdempotencyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "shop:home"


def _shop_page(route: str):
    def url(obj) -> str:
        from django.urls import reverse

        return reverse(route, args=[obj.slug])

    return url


# The admin's "View on site" links: catalog does not know the shop's URLs, so the wiring gives its models theirs.
ABSOLUTE_URL_OVERRIDES = {
    "catalog.category": _shop_page("shop:category"),
    "catalog.product": _shop_page("shop:product"),
}


TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["accounts.templatetags.addresses", "shop.templatetags.shop_tags"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.shop",
                "shop.context_processors.navigation",
            ],
        },
    },
]

# ---------------------------------------------------------------- database
# DATABASE_URL (default: SQLite file under var/). DATABASE_URL_<MODULE> (for example DATABASE_URL_CATALOG) gives a
# module a database of its own; kernel.db.ModuleRouter sends each module's tables to its alias. DATABASE_URL_ACCOUNTS
# also takes Django's auth, contenttypes, admin and sessions tables (they point at the user model or at each other).
_DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 60)


def _database(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=_DB_CONN_MAX_AGE, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL and IMMEDIATE transactions let the development server and in-process tasks write side by side.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # catalog's search matches a query word to a title word at pg_trgm word similarity 0.45, as on SQLite
        # (catalog.search.FUZZY_THRESHOLD); the default 0.6 misses "speker" for "speaker". Given when the connection
        # opens, so it costs no statement (a pooler in transaction mode passes startup options on).
        config["OPTIONS"] = {"options": "-c pg_trgm.word_similarity_threshold=0.45"}
        if env_bool("DB_PREPARED_STATEMENTS", True):
            # Parameters bound by the server rather than quoted in Python, and a statement a connection has run 5
            # times is prepared (parsed and planned once): about a third less PostgreSQL CPU on checkout
            # (bench/checkout.py). Set DB_PREPARED_STATEMENTS=0 behind a pooler in transaction mode (PgBouncer
            # without max_prepared_statements), which cannot keep a prepared statement across transactions.
            config["OPTIONS"] |= {"server_side_binding": True, "prepare_threshold": 5}
    return config


DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": _database(DATABASE_URL)}
for _module in SHOP_MODULES:
    _module_url = env_str(f"DATABASE_URL_{_module.upper()}")
    if _module_url:
        DATABASES[_module] = _database(_module_url)
DATABASE_ROUTERS = ["kernel.db.ModuleRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- cache, sessions
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "kernel.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "shop"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shop"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# ---------------------------------------------------------------- Celery
# Absent REDIS_URL: tasks run in-process (after the transaction commits, as they would on a worker).
# Present: Redis is the broker, or CELERY_BROKER_URL (amqp://... for RabbitMQ). Every task is idempotent, so late
# acknowledgement with reject-on-worker-lost is the default: a task whose worker dies is delivered again rather
# than lost.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not (env_str("CELERY_BROKER_URL") or REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Tasks go to a queue per group under this one ("shop.email", "shop.fulfilment", ...): config.celery.route_task
# and kernel.bus name them when the task is sent. A task no router knows goes to this queue itself.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "shop")
CELERY_TASK_ROUTES = ["config.celery.route_task"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
_broker_scheme = CELERY_BROKER_URL.split("://", 1)[0]  # redis, rediss, amqp, pyamqp, amqps, memory (not a setting)
# The longest countdown or retry delay any task may ask for; kernel.celery caps retries (10 minutes) below it. A
# broker must hold a delayed task unacknowledged at least this long without handing it to another worker.
if _broker_scheme in ("amqp", "pyamqp", "amqps"):
    # RabbitMQ: the worker holds a delayed (countdown) task unacknowledged until it runs, and RabbitMQ closes the
    # channel of a consumer that holds a message longer than its consumer_timeout (30 minutes by default; set in
    # rabbitmq.conf, and say it here). A countdown and the task's time limit must fit in it. Publisher confirms: a
    # task counts as sent once RabbitMQ has it. No visibility timeout: RabbitMQ re-delivers an unacknowledged
    # task when its worker's connection closes.
    RABBITMQ_CONSUMER_TIMEOUT = env_int("RABBITMQ_CONSUMER_TIMEOUT", 30 * 60)
    CELERY_MAX_COUNTDOWN = RABBITMQ_CONSUMER_TIMEOUT - CELERY_TASK_TIME_LIMIT - 60
    if CELERY_MAX_COUNTDOWN < 10 * 60:
        raise ImproperlyConfigured(
            "RABBITMQ_CONSUMER_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT by 11 minutes (a retry waits up to 10)."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    CELERY_BROKER_CONNECTION_TIMEOUT = 3
else:
    CELERY_MAX_COUNTDOWN = 60 * 60
    # Redis re-delivers an unacknowledged message after the visibility timeout: it must be longer than any
    # countdown, or a delayed task would run twice (Celery's documentation, "Redis caveats").
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 60 * 60),
        "socket_connect_timeout": 3,
    }
    if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= CELERY_MAX_COUNTDOWN:
        raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_MAX_COUNTDOWN (3600 s).")
# A request that publishes while the broker is down must not hang: the outbox sweep delivers later.
# Celery's Django fixup closes the database connection around every task unless this is set, so each task would
# open a new PostgreSQL connection (a backend process each time). config.celery instead treats a task as Django
# treats a request: connections past CONN_MAX_AGE, or broken, are closed before and after it. The fixup still
# recycles them every 10,000 tasks.
CELERY_DB_REUSE_MAX = 5_000
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "kernel.outbox_sweep", "schedule": env_int("OUTBOX_SWEEP_SECONDS", 30)},
    "outbox-purge": {"task": "kernel.outbox_purge", "schedule": 60 * 60 * 6},
    "idempotency-purge": {"task": "kernel.idempotency_purge", "schedule": 60 * 60},
    "worker-heartbeat": {"task": "kernel.worker_heartbeat", "schedule": 60},
    "payments-resolve-pending": {"task": "payments.resolve_pending", "schedule": 60},
    "orders-expire-unpaid": {"task": "orders.expire_unpaid", "schedule": 60},
    "catalog-expire-reservations": {"task": "catalog.expire_reservations", "schedule": 60},
    "catalog-reconcile-reservations": {"task": "catalog.reconcile_reservations", "schedule": 10 * 60},
    "webhooks-send-due": {"task": "webhooks.send_due", "schedule": env_int("WEBHOOKS_SWEEP_SECONDS", 10)},
    "webhooks-purge": {"task": "webhooks.purge", "schedule": 60 * 60 * 6},
    "recommendations-nightly-build": {
        "task": "recommendations.nightly_build",
        "schedule": crontab(hour=env_int("RECS_BUILD_HOUR", 3), minute=0),
    },
    "recommendations-rebuild-if-due": {
        "task": "recommendations.rebuild_if_due",
        "schedule": max(env_int("RECS_REBUILD_MIN_SECONDS", 15 * 60), 60),
    },
}

# ---------------------------------------------------------------- recommendations
# The build (recommendations.build): "chance" (bought together more often than chance predicts, Smith and Linden
# 2017: the default, so that best sellers do not crowd every list) or "cosine" (item-to-item, Linden et al. 2003;
# here the asymmetric cosine of exponent RECS_COSINE_ALPHA, 0.5 being the plain one, which scores best on held-out
# grocery baskets, README "Evaluation"); K related products per product; a pair needs RECS_MIN_COUNT customers who
# bought both; a rebuild after this many new paid orders (0: only nightly, at RECS_BUILD_HOUR, and by `manage.py
# recs_build`); a build's lease on its table.
RECS_METHOD = env_str("RECS_METHOD", "chance")
if RECS_METHOD not in ("chance", "cosine"):
    raise ImproperlyConfigured(f"RECS_METHOD={RECS_METHOD!r}: use chance or cosine.")
RECS_COSINE_ALPHA = env_float("RECS_COSINE_ALPHA", 0.7)
if not 0 <= RECS_COSINE_ALPHA <= 1:
    raise ImproperlyConfigured(f"RECS_COSINE_ALPHA={RECS_COSINE_ALPHA!r}: use a number from 0 to 1.")
RECS_K = env_int("RECS_K", 20)
RECS_MIN_COUNT = env_int("RECS_MIN_COUNT", 3)  # customers who bought both, at least, for a pair to be related
RECS_REBUILD_EVERY = env_int("RECS_REBUILD_EVERY", 100)
# ...but not sooner than this after the last build (a build reads the whole ledger); beat asks again this often.
RECS_REBUILD_MIN_SECONDS = env_int("RECS_REBUILD_MIN_SECONDS", 15 * 60)
RECS_BUILD_LEASE_SECONDS = env_int("RECS_BUILD_LEASE_SECONDS", 60 * 60)

# ---------------------------------------------------------------- events (kernel.bus)
# An event not yet delivered this long after publication is picked up by the periodic sweep.
OUTBOX_SWEEP_AFTER_SECONDS = env_int("OUTBOX_SWEEP_AFTER_SECONDS", 120)
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 12)  # 2 + 4 + 8 + ... minutes, capped at 1 h: about 7 h

# ---------------------------------------------------------------- static files and media
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = env_str("MEDIA_URL", "/media/")
MEDIA_ROOT = VAR_DIR / "media"
# Let Django serve uploaded media itself (development, small single-host shops). Otherwise media comes from
# S3-compatible storage or the front web server.
SERVE_MEDIA = env_bool("SERVE_MEDIA", DEBUG)

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "custom_domain": env_str("AWS_S3_CUSTOM_DOMAIN") or None,
            "location": env_str("AWS_LOCATION", "media"),
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", False),
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# ---------------------------------------------------------------- email
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Shop <shop@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH") or None  # for EMAIL_BACKEND=...filebased.EmailBackend

# ---------------------------------------------------------------- auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------- i18n
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- catalog
# Category pages count their facets and find their page in a per-process in-memory index (catalog/facet_index.py)
# instead of GROUP BY and ORDER BY ... OFFSET over the category; 0 keeps the SQL path (searches always use it).
CATALOG_FACET_INDEX = env_bool("CATALOG_FACET_INDEX", True)

# ---------------------------------------------------------------- shop
SHOP_NAME = env_str("SHOP_NAME", "Northwind Goods")
SHOP_CURRENCY = env_str("SHOP_CURRENCY", "EUR")
SHOP_TAX_RATE = env_str("SHOP_TAX_RATE", "0.20")  # VAT as a fraction
SHOP_PRICES_INCLUDE_TAX = env_bool("SHOP_PRICES_INCLUDE_TAX", True)
SHOP_FREE_SHIPPING_ABOVE = env_str("SHOP_FREE_SHIPPING_ABOVE", "50.00")
SHOP_DEFAULT_COUNTRY = env_str("SHOP_DEFAULT_COUNTRY", "DE")  # the country address forms start with (ISO code)
SHOP_RESERVATION_MINUTES = env_int("SHOP_RESERVATION_MINUTES", 15)  # stock held while the customer pays
# The shop's address as customers reach it, for links in emails (sent by workers, with no request to read it from).
SHOP_SITE_URL = (
    env_str("SHOP_SITE_URL")
    or ("http://127.0.0.1:8000" if DEBUG or not ALLOWED_HOSTS else f"https://{ALLOWED_HOSTS[0]}")
).rstrip("/")

# The address the info pages (contact, delivery, returns, ...) give customers; empty: DEFAULT_FROM_EMAIL's address.
SHOP_CONTACT_EMAIL = env_str("SHOP_CONTACT_EMAIL")

# ---------------------------------------------------------------- fulfilment (orders)
# Pack and ship paid orders automatically (a Celery task, one parcel, a generated tracking number): for shops
# without a warehouse team, and for the checkout benchmark.
ORDERS_AUTO_FULFIL = env_bool("ORDERS_AUTO_FULFIL", False)
# Carriers staff may choose, with the tracking page of each ({tracking} is the parcel's tracking number).
ORDERS_CARRIERS = {
    "dhl": ("DHL", "https://www.dhl.com/en/express/tracking.html?AWB={tracking}"),
    "ups": ("UPS", "https://www.ups.com/track?tracknum={tracking}"),
    "dpd": ("DPD", "https://tracking.dpd.de/status/en_US/parcel/{tracking}"),
    "post": ("Northwind Post", "https://track.northwind.example/{tracking}"),
}
# Secrets for signed delivery updates from carriers (POST /orders/carrier/<carrier>/): "dhl=secret,ups=secret".
ORDERS_CARRIER_SECRETS = dict(item.split("=", 1) for item in env_list("ORDERS_CARRIER_SECRETS") if "=" in item)
ORDERS_CARRIER_TOLERANCE_SECONDS = env_int("ORDERS_CARRIER_TOLERANCE_SECONDS", 300)
ORDERS_RETURN_DAYS = env_int("ORDERS_RETURN_DAYS", 30)  # how long after delivery a customer may ask to return
# Seconds a rendered catalog page part is kept (0: off). On by default with Redis, where every process shares the
# cache and catalog events can invalidate it; off without Redis (see shop/caching.py).
SHOP_PAGE_CACHE_SECONDS = env_int("SHOP_PAGE_CACHE_SECONDS", 300 if REDIS_URL else 0)
# Cache-Control max-age for catalog pages served to anonymous visitors (browsers and shared caches).
SHOP_PUBLIC_MAX_AGE = env_int("SHOP_PUBLIC_MAX_AGE", 60)
# Seconds the product ids of a recommendation slot are kept in the cache (shop/recs.py): they change only when the
# recommendations build runs; the cards themselves are read fresh.
SHOP_RECS_IDS_SECONDS = env_int("SHOP_RECS_IDS_SECONDS", 600)

# ---------------------------------------------------------------- payments
# "test" (the built-in test gateway, whose cards are fake) or "stripe". A production shop defaults to Stripe: the
# test gateway is on only in development or when chosen explicitly.
PAYMENTS_GATEWAY = env_str("PAYMENTS_GATEWAY", "test" if DEBUG else "stripe")
PAYMENTS_TEST_GATEWAY_ENABLED = env_bool("PAYMENTS_TEST_GATEWAY_ENABLED", PAYMENTS_GATEWAY == "test")
PAYMENTS_TEST_GATEWAY_SECRET = env_str("PAYMENTS_TEST_GATEWAY_SECRET", "test-gateway-" + SECRET_KEY[:24])
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")

# ---------------------------------------------------------------- outgoing webhooks (webhooks, Standard Webhooks)
# One HTTP try may take this long (connect, then each read); a try slower than that fails and is retried.
WEBHOOKS_TIMEOUT_SECONDS = env_int("WEBHOOKS_TIMEOUT_SECONDS", 10)
# A try in flight holds its message this long; a worker killed mid-request leaves it to webhooks.send_due after
# that. Must exceed the longest try (connect + read timeouts): the delivery task's time limit is set below it.
WEBHOOKS_LEASE_SECONDS = env_int("WEBHOOKS_LEASE_SECONDS", 3 * WEBHOOKS_TIMEOUT_SECONDS + 30)
if WEBHOOKS_LEASE_SECONDS <= 2 * WEBHOOKS_TIMEOUT_SECONDS:
    raise ImproperlyConfigured("WEBHOOKS_LEASE_SECONDS must exceed twice WEBHOOKS_TIMEOUT_SECONDS (connect + read).")
# A message is retried (exponential back-off from WEBHOOKS_RETRY_BASE_SECONDS, full jitter, at most
# WEBHOOKS_RETRY_MAX_DELAY_SECONDS apart) until this long after it was created; then it has failed.
WEBHOOKS_RETRY_FOR_SECONDS = env_int("WEBHOOKS_RETRY_FOR_SECONDS", 3 * 24 * 60 * 60)
WEBHOOKS_RETRY_BASE_SECONDS = env_int("WEBHOOKS_RETRY_BASE_SECONDS", 5)
WEBHOOKS_RETRY_MAX_DELAY_SECONDS = env_int("WEBHOOKS_RETRY_MAX_DELAY_SECONDS", 6 * 60 * 60)
# An endpoint whose every try has failed for this long (no 2xx in between) is disabled; a 410 Gone disables it at
# once. Staff are emailed either way.
WEBHOOKS_DISABLE_AFTER_SECONDS = env_int("WEBHOOKS_DISABLE_AFTER_SECONDS", 5 * 24 * 60 * 60)
# After a secret rotation the previous secret keeps signing (a second v1 signature) this long.
WEBHOOKS_SECRET_GRACE_SECONDS = env_int("WEBHOOKS_SECRET_GRACE_SECONDS", 24 * 60 * 60)
# stock.low goes out when a variant's available stock falls to or below this from above it.
WEBHOOKS_STOCK_LOW_THRESHOLD = env_int("WEBHOOKS_STOCK_LOW_THRESHOLD", 5)
# Delivered and failed messages, with their tries, are deleted this long after they were made.
WEBHOOKS_RETENTION_DAYS = env_int("WEBHOOKS_RETENTION_DAYS", 30)
# Endpoint URLs must be https unless DEBUG; URLs naming localhost or a loopback, private or link-local IP address
# are refused unless allowed (development). Host names are not resolved: that check is the egress proxy's job.
WEBHOOKS_REQUIRE_HTTPS = env_bool("WEBHOOKS_REQUIRE_HTTPS", not DEBUG)
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", DEBUG)
# An egress proxy for the requests to endpoints (http://proxy:3128), or none; the environment's proxies are ignored.
WEBHOOKS_PROXY = env_str("WEBHOOKS_PROXY")
WEBHOOKS_USER_AGENT = env_str("WEBHOOKS_USER_AGENT", SHOP_NAME.replace(" ", "") + "-Webhooks/1.0")

# ---------------------------------------------------------------- REST API
REST_FRAMEWORK = {
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ShopAutoSchema",
    # API keys first: a request without credentials gets 401 with WWW-Authenticate: Bearer.
    "DEFAULT_AUTHENTICATION_CLASSES": ["config.api.ApiKeyAuthentication", "config.api.StaffSessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.TokenBucketThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["config.api.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "kernel.api.StableOrderingFilter",  # ?ordering=, ties kept in a fixed order, typos refused
    ],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Per API key (or staff user): API_THROTTLE_BURST requests at once, refilled at API_THROTTLE_RATE a second.
API_THROTTLE_RATE = float(env_str("API_THROTTLE_RATE", "20"))
API_THROTTLE_BURST = env_int("API_THROTTLE_BURST", 100)
# The rendered answers of the busiest lists (products, orders) are cached until a row under them changes
# (kernel.api.FreshListCache); this long at most. 0: off.
API_LIST_CACHE_SECONDS = env_int("API_LIST_CACHE_SECONDS", 60)
SPECTACULAR_SETTINGS = {
    "TITLE": f"{SHOP_NAME} API",
    "DESCRIPTION": (
        "Versioned REST API of the shop for integrators (an ERP, a warehouse system, a marketplace feed). "
        "Authenticate with an API key made by staff in the admin: `Authorization: Bearer shk_...`. "
        "Each operation names the scope it needs. Lists use cursor pagination (follow `next`); "
        "`updated_since` filters for incremental sync. POSTs accept an `Idempotency-Key` header. "
        'Errors have one shape: `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
        "code": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^/\\x00]+$"},
    },
    # The staff session is for the browsable API; integrators authenticate with keys only.
    "AUTHENTICATION_WHITELIST": ["config.api.ApiKeyAuthentication"],
    "ENUM_NAME_OVERRIDES": {},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.api_schema.add_error_component"],
}

# ---------------------------------------------------------------- logging
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
