"""Test set-up.

Tests marked `postgres`, `redis`, `browser` or `axe` (axe-core from npm, for the accessibility checks) need that
service. Where it is missing they are skipped, except when SHOP_REQUIRE_SERVICES=1 (set by .ci/run): then they
fail, so CI can never go green by skipping them.

Every test that uses the database gets all database aliases (with DATABASE_URL_<MODULE> set, each module has its
own), and every statement it runs is checked: one that touches two modules' tables fails the test.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("SHOP_REQUIRE_SERVICES", "") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"
AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (SHOP_REQUIRE_SERVICES=1): {reason}", pytrace=False)
    pytest.skip(reason)


def _redis_problem() -> str | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {url} does not answer: {exc}"
    return None


# ---------------------------------------------------------------- every database alias for every database test
DB_FIXTURES = {"db", "transactional_db", "live_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-django lets a test use only the "default" alias unless it declares others. Give every test that
    uses the database (a django_db mark, or the db, transactional_db or live_server fixture, which admin_client
    and admin_user request) all of them, keeping the mark's other arguments. A test with no database access
    (test_health's /healthz) stays without one, so it still proves it does no I/O."""
    from pytest_django.fixtures import validate_django_db

    for item in items:
        marker = item.get_closest_marker("django_db")
        fixtures = set(getattr(item, "fixturenames", ()))
        if marker is not None:
            transaction, reset_sequences, _databases, serialized_rollback, available_apps = validate_django_db(marker)
        elif fixtures & DB_FIXTURES:
            transaction, reset_sequences, serialized_rollback, available_apps = False, False, False, None
        else:
            continue
        transaction = transaction or bool(fixtures & {"transactional_db", "live_server"})
        mark = pytest.mark.django_db(
            transaction=transaction,
            reset_sequences=reset_sequences,
            databases="__all__",
            serialized_rollback=serialized_rollback,
            available_apps=available_apps,
        )
        item.add_marker(mark, append=False)  # first, so get_closest_marker() finds it before the test's own


@pytest.fixture
def django_capture_on_commit_callbacks():
    """pytest-django's fixture, on every alias at once unless `using` names one: with modules on databases of
    their own, a module's events are delivered from an on_commit callback of its own alias. Callbacks that the
    executed ones register (on any alias) are captured and run too, as Django's own does for one alias."""
    from django.db import connections

    @contextmanager
    def capture(*, using: str | None = None, execute: bool = False):
        aliases = [using] if using else list(connections)
        start = {alias: len(connections[alias].run_on_commit) for alias in aliases}
        callbacks = []
        try:
            yield callbacks
        finally:
            while True:
                new = []
                for alias in aliases:
                    pending = connections[alias].run_on_commit
                    new += pending[start[alias] :]
                    start[alias] = len(pending)
                if not new:
                    break
                for _, callback, robust in new:
                    callbacks.append(callback)
                    if not execute:
                        continue
                    if robust:
                        try:
                            callback()
                        except Exception as exc:
                            logging.getLogger("django.test").error(
                                "Error calling %s in on_commit() (%s).", callback.__qualname__, exc, exc_info=True
                            )
                    else:
                        callback()

    return capture


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis"):
        problem = _redis_problem()
        if problem:
            missing(problem)
    if item.get_closest_marker("browser"):
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing("playwright is not installed")
        if not Path(CHROMIUM).exists():
            missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if item.get_closest_marker("axe") and not AXE_JS.exists():
        if not shutil.which("npm"):
            missing("the accessibility checks need axe-core from npm, and npm is not installed (apt-get install npm)")
        missing(f"no axe-core at {AXE_JS}: run `make test` or `npm ci` (package-lock.json pins it)")


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Each test starts with an empty cache of its own (a shared Redis would carry state between tests).
    Page caching is off unless a test turns it on; the tests of caching with Redis do so explicitly."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    settings.SHOP_PAGE_CACHE_SECONDS = 0
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_facet_index():
    """Each test starts with no facet index: catalog.facet_index is per-process state, and a test's rolled-back
    products must not stay in the next test's counts."""
    from catalog import facet_index

    facet_index.reset()
    yield
    facet_index.reset()


@pytest.fixture(autouse=True)
def _api_throttle_roomy(settings):
    """The API's token buckets hold plenty in tests (the throttling test sets its own small bucket), and the list
    cache is off (its own tests turn it on)."""
    settings.API_THROTTLE_BURST = 100_000
    settings.API_THROTTLE_RATE = 10_000.0
    settings.API_LIST_CACHE_SECONDS = 0  # the tests of the list cache turn it on


@pytest.fixture(autouse=True)
def _tasks_in_process():
    """Tasks run in-process in tests, whatever REDIS_URL says; the worker tests switch this off."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page():
    """A headless Chromium page at 1280 px; `page.set_viewport_size(PHONE)` turns it into a phone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=DESKTOP)
        yield context.new_page()
        browser.close()


@pytest.fixture
def demo_catalog():
    """The demo shop's catalog: 80 products with colours, sizes, pictures and stock."""
    from catalog.services import demo_catalog_seed

    demo_catalog_seed(products=80, seed=3)


@pytest.fixture
def info_pages():
    """The info pages (delivery, returns, terms, privacy, contact) as migration shop.0003 makes them: a transactional
    test's flush removes what migrations wrote, so browser tests that follow the footer put them back."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connections

    from kernel.db import db_for_module

    migration = importlib.import_module("shop.migrations.0003_info_pages")
    migration.create_info_pages(apps, SimpleNamespace(connection=connections[db_for_module("shop")]))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# ---------------------------------------------------------------- no statement joins two modules' tables
_WORD = re.compile(r"[a-z_][a-z0-9_$]*")
_NOT_A_QUERY = ("TRUNCATE", "CREATE", "ALTER", "DROP", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "SET ")


@functools.cache
def _table_modules() -> dict[str, str]:
    """Table name -> the module owning it ("accounts" for accounts and Django's apps that live with it). The
    kernel's tables, which every module's database carries, are left out: they may appear with anyone's."""
    from django.apps import apps

    from kernel.db import module_of

    tables = {}
    for model in apps.get_models(include_auto_created=True):
        module = module_of(model._meta.app_label)
        if module:
            tables[model._meta.db_table.lower()] = module
    return tables


@functools.lru_cache(maxsize=8192)
def statement_modules(sql: str) -> frozenset[str]:
    """The modules whose tables a statement mentions (a flush or other DDL mentions none)."""
    if sql.lstrip()[:9].upper().startswith(_NOT_A_QUERY):
        return frozenset()
    tables = _table_modules()
    return frozenset(tables[word] for word in set(_WORD.findall(sql.lower())) if word in tables)


class ModuleQueries:
    """An execute wrapper for every connection: counts the statements each module's tables see, and refuses
    (AssertionError, and a failure at teardown in case the code under test swallowed it) a statement that
    touches the tables of two modules, or that writes another module's tables inside a module's own transaction
    (kernel.db.atomic): one module, one transaction."""

    def __init__(self) -> None:
        self.statements: dict[str, int] = {}
        self.crossings: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        modules = statement_modules(sql) if isinstance(sql, str) else statement_modules(str(sql))
        if len(modules) > 1:
            problem = f"one statement touches the tables of {' and '.join(sorted(modules))}: {sql[:300]}"
            self.crossings.append(problem)
            raise AssertionError(problem)
        from kernel.db import current_module

        inside = current_module()
        if inside and modules and modules != {inside} and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            problem = f"{inside}'s transaction writes {', '.join(sorted(modules))}'s tables: {sql[:300]}"
            self.crossings.append(problem)
            raise AssertionError(problem)
        for module in modules:
            self.statements[module] = self.statements.get(module, 0) + 1
        return execute(sql, params, many, context)


@pytest.fixture(autouse=True)
def module_queries():
    from django.db import connections

    watch = ModuleQueries()
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(watch))
        yield watch
    if watch.crossings:
        pytest.fail("a statement joined two modules' tables:\n" + "\n".join(watch.crossings), pytrace=False)
