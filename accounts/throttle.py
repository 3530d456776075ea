"""Sign-in throttling, in Django's cache: per account and per IP address, over a quarter of an hour.

Each attempt takes a slot *before* the password is checked, with an atomic counter (cache.add, then cache.incr:
both atomic in Redis and in the local-memory cache). So however many sign-ins for one account arrive at once, at
most MAX_FAILURES_PER_ACCOUNT of them reach the password check in a window; a check-then-record scheme would let
all of them through before the first failure was written. A window starts with the first failure and lasts
WINDOW_SECONDS; a successful sign-in clears the account's count and gives back its slot on the address.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 30


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        return (
            f"Too many failed sign-in attempts. For your security, please wait {minutes} minute"
            f"{'s' if minutes != 1 else ''} before trying again, or reset your password."
        )


def _keys(email: str, ip: str) -> tuple[str, str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:account:{digest}", f"login-fail:ip:{ip}"


def _take(key: str, now: float) -> int:
    """Count one attempt against `key` atomically; returns the count including it."""
    while True:
        if cache.add(key, 1, timeout=WINDOW_SECONDS):
            cache.set(f"{key}:since", now, timeout=WINDOW_SECONDS)
            return 1
        try:
            count = cache.incr(key)
        except ValueError:  # it expired between add and incr: start a new window
            continue
        if count == 1:  # Redis: it expired just before incr, which made a key with no expiry; give it one
            cache.touch(key, WINDOW_SECONDS)
            cache.set(f"{key}:since", now, timeout=WINDOW_SECONDS)
        return count


def _give_back(key: str) -> None:
    try:
        if cache.decr(key) <= 0:
            cache.delete_many([key, f"{key}:since"])
    except ValueError:  # expired meanwhile: nothing to give back
        pass


def _retry_after(key: str, now: float) -> int:
    since = cache.get(f"{key}:since", now)
    return max(1, math.ceil(WINDOW_SECONDS - (now - since)))


def attempt(email: str, ip: str) -> None:
    """Take a slot for one sign-in attempt, or raise Throttled if this account or address has failed too often
    lately (the refused attempt is not counted). Call succeeded() or not_checked() afterwards where they apply;
    otherwise the attempt counts as a failure."""
    now = time.time()
    taken = []
    for key, limit in zip(_keys(email, ip), (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP), strict=True):
        taken.append(key)
        if _take(key, now) > limit:
            for earlier in taken:
                _give_back(earlier)
            raise Throttled(_retry_after(key, now))


def succeeded(email: str, ip: str) -> None:
    """The password was right: forget the account's failures and give back the address's slot."""
    account, address = _keys(email, ip)
    cache.delete_many([account, f"{account}:since"])
    _give_back(address)


def not_checked(email: str, ip: str) -> None:
    """The attempt never reached the password check (an empty field): give both slots back."""
    for key in _keys(email, ip):
        _give_back(key)
