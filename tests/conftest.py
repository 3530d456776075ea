"""Test set-up.

Tests marked `postgres`, `redis` or `browser` need that service. Where it is missing they are skipped, except when
SHOP_REQUIRE_SERVICES=1 (set by .ci/run): then they fail, so CI can never go green by skipping them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("SHOP_REQUIRE_SERVICES", "") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"


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
def _tasks_in_process():
    """Tasks run in-process in tests, whatever REDIS_URL says; the worker tests switch this off."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
