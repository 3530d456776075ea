"""Sign-in throttling under concurrency: the counter is atomic, so simultaneous failed sign-ins never get more
password checks than the limit allows, with the local-memory cache and with Redis."""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from accounts import throttle
from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def cache_backend(request, settings):
    if request.param == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "kernel.cache.RedisCache",
                "LOCATION": os.environ["REDIS_URL"],
                "KEY_PREFIX": f"throttle-test-{os.getpid()}",
            }
        }
        from django.core.cache import cache

        cache.clear()
    return request.param


def run_at_once(count: int, work) -> list:
    """Run work(i) in `count` real threads released together; returns what each returned, or raises the first
    error."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_failures_for_one_account_reach_the_password_check_exactly_five_times(cache_backend):
    checked = []

    def sign_in(i: int) -> str:
        try:
            throttle.attempt("ada@example.com", f"10.0.0.{i}")
        except throttle.Throttled:
            return "throttled"
        checked.append(i)
        time.sleep(0.05)  # the password check takes a while; the failure is only known after it
        return "checked"

    outcomes = run_at_once(20, sign_in)
    assert len(checked) == throttle.MAX_FAILURES_PER_ACCOUNT == 5
    assert outcomes.count("throttled") == 15


def test_concurrent_failures_from_one_address_stop_at_thirty(cache_backend):
    outcomes = []

    def sign_in(i: int) -> None:
        try:
            throttle.attempt(f"guess{i}@example.com", "10.9.9.9")
            outcomes.append("checked")
        except throttle.Throttled:
            outcomes.append("throttled")

    run_at_once(45, sign_in)
    assert outcomes.count("checked") == throttle.MAX_FAILURES_PER_IP == 30
    # A refused attempt takes no slot, so the refused guesses did not use up their accounts' counts.
    throttle.attempt("guess0@example.com", "10.1.1.1")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_through_the_sign_in_page(monkeypatch):
    UserFactory(email="ada@example.com")
    checked, lock = [], threading.Lock()
    real_check = User.check_password

    def slow_check(user, raw_password):
        with lock:
            checked.append(raw_password)
        time.sleep(0.05)
        return real_check(user, raw_password)

    monkeypatch.setattr(User, "check_password", slow_check)

    def sign_in(i: int) -> int:
        response = Client().post(
            "/account/login/", {"username": "ada@example.com", "password": f"wrong-{i}"}, REMOTE_ADDR=f"10.0.1.{i}"
        )
        return "Too many failed sign-in attempts" in response.content.decode()

    throttled = run_at_once(20, sign_in)
    assert len(checked) == 5, "exactly five attempts were checked against the password"
    assert throttled.count(True) == 15
    page = Client().post("/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert "wait 15 minutes" in page.content.decode()
    assert len(checked) == 5


@pytest.mark.django_db
def test_an_empty_password_neither_counts_nor_clears_the_failures(client):
    UserFactory(email="ada@example.com")
    for _ in range(4):
        client.post("/account/login/", {"username": "ada@example.com", "password": "wrong"})
    for _ in range(3):
        client.post("/account/login/", {"username": "ada@example.com", "password": ""})
    client.post("/account/login/", {"username": "ada@example.com", "password": "wrong"})
    page = client.post("/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert "Too many failed sign-in attempts" in page.content.decode()


@pytest.mark.django_db
def test_a_successful_sign_in_clears_the_accounts_failures(client):
    UserFactory(email="ada@example.com")
    for _ in range(4):
        client.post("/account/login/", {"username": "ada@example.com", "password": "wrong"})
    assert (
        client.post("/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD}).status_code == 302
    )
    client.logout()
    for _ in range(4):
        client.post("/account/login/", {"username": "ada@example.com", "password": "wrong"})
    assert (
        client.post("/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD}).status_code == 302
    )


def test_the_wait_counts_down_and_the_window_ends(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    for _ in range(5):
        throttle.attempt("ada@example.com", "10.0.0.1")
    with pytest.raises(throttle.Throttled) as refused:
        throttle.attempt("ada@example.com", "10.0.0.1")
    assert "wait 15 minutes" in refused.value.message
    now[0] += 10 * 60 + 30
    with pytest.raises(throttle.Throttled) as refused:
        throttle.attempt("ada@example.com", "10.0.0.1")
    assert "wait 5 minutes" in refused.value.message
    now[0] += 5 * 60
    throttle.attempt("ada@example.com", "10.0.0.1")  # a new window
