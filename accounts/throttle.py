"""Sign-in throttling, in Django's cache: per account and per IP address, over a sliding quarter of an hour."""

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


def _recent(key: str, now: float) -> list[float]:
    return [t for t in cache.get(key, []) if now - t < WINDOW_SECONDS]


def check(email: str, ip: str) -> None:
    """Raise Throttled if this account or this address has failed too often lately."""
    now = time.time()
    for key, limit in zip(_keys(email, ip), (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP), strict=True):
        failures = _recent(key, now)
        if len(failures) >= limit:
            raise Throttled(int(WINDOW_SECONDS - (now - failures[-limit])) + 1)


def failed(email: str, ip: str) -> None:
    now = time.time()
    for key in _keys(email, ip):
        cache.set(key, [*_recent(key, now), now][-100:], timeout=WINDOW_SECONDS)


def succeeded(email: str, ip: str) -> None:
    cache.delete(_keys(email, ip)[0])
