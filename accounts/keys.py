"""API keys for integrators: made by staff in the admin, shown once, kept as a hash, with scopes and an expiry.

A key reads `shk_<prefix>_<secret>`: the prefix (10 characters) finds the row, the SHA-256 of the whole key is
compared in constant time. Revoking or expiring a key takes effect on the next request. "Last used" is written
at most once a minute per key, so a busy integrator does not turn every read into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import ApiKey
from kernel.db import atomic

# What a key may do. A write scope includes the read of the same thing (catalog:write reads the catalog too);
# inventory:write sets stock and reads it; webhooks manages webhook subscriptions.
API_SCOPES: tuple[str, ...] = (
    "catalog:read",
    "catalog:write",
    "inventory:write",
    "orders:read",
    "orders:write",
    "customers:read",
    "webhooks",
)
SCOPE_INCLUDES: dict[str, frozenset[str]] = {
    "catalog:write": frozenset({"catalog:read"}),
    "inventory:write": frozenset({"catalog:read"}),
    "orders:write": frozenset({"orders:read"}),
}
KEY_PREFIX = "shk_"
LAST_USED_EVERY = timedelta(minutes=1)


class ApiKeyError(Exception):
    """Base of the API key errors."""


class ApiKeyInvalid(ApiKeyError):
    """The key is unknown, malformed, revoked or expired. The message says which, in words a client may see."""


class UnknownScope(ApiKeyError, ValueError):
    """A scope not in API_SCOPES."""


class ApiKeyNotFound(ApiKeyError):
    """No API key with this id."""


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def grants(self, scope: str) -> bool:
        return scope_granted(self.scopes, scope)


def scope_granted(granted: Iterable[str], scope: str) -> bool:
    """Whether a set of scopes covers `scope`, counting what a write scope includes."""
    granted = set(granted)
    return scope in granted or any(scope in SCOPE_INCLUDES.get(g, ()) for g in granted)


def _info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key.pk,
        key.name,
        key.prefix,
        frozenset(key.scopes),
        key.created_at,
        key.expires_at,
        key.revoked_at,
        key.last_used_at,
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown:
        raise UnknownScope(f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(API_SCOPES)}.")
    return scopes


def api_key_create(
    *, name: str, scopes: Iterable[str], expires_at: datetime | None = None, created_by_id: int | None = None
) -> tuple[ApiKeyInfo, str]:
    """Make a key. Returns its info and the key itself, which is not kept and cannot be shown again."""
    checked = _checked_scopes(scopes)
    prefix = secrets.token_hex(5)
    token = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with atomic(module="accounts"):
        key = ApiKey.objects.create(
            name=name.strip() or "API key",
            prefix=prefix,
            key_hash=_hash(token),
            scopes=checked,
            expires_at=expires_at,
            created_by_id=created_by_id,
        )
    return _info(key), token


def api_key_update(
    *, key_id: int, name: str | None = None, scopes: Iterable[str] | None = None, expires_at: datetime | None = None
) -> ApiKeyInfo:
    with atomic(module="accounts"):
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise ApiKeyNotFound(key_id)
        if name is not None:
            key.name = name.strip() or key.name
        if scopes is not None:
            key.scopes = _checked_scopes(scopes)
        key.expires_at = expires_at
        key.save(update_fields=["name", "scopes", "expires_at"])
    return _info(key)


def api_key_revoke(*, key_id: int) -> ApiKeyInfo:
    """Revoke a key for good; its next request gets 401. Revoking twice keeps the first time."""
    with atomic(module="accounts"):
        ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise ApiKeyNotFound(key_id)
    return _info(key)


def api_key_get(*, key_id: int) -> ApiKeyInfo:
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise ApiKeyNotFound(key_id)
    return _info(key)


def api_key_authenticate(*, token: str, now: datetime | None = None) -> ApiKeyInfo:
    """The key a request presents, if it is good. Raises ApiKeyInvalid saying why not."""
    now = now or timezone.now()
    body = token[len(KEY_PREFIX) :] if token.startswith(KEY_PREFIX) else ""
    prefix, _, secret = body.partition("_")
    if not prefix or not secret:
        raise ApiKeyInvalid("The API key is malformed: it reads shk_<prefix>_<secret>.")
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(token)):
        raise ApiKeyInvalid("The API key is not valid.")
    if key.revoked_at is not None:
        raise ApiKeyInvalid("The API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise ApiKeyInvalid("The API key has expired.")
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_EVERY:
        # Conditional, so concurrent requests write it once; outside any request transaction.
        ApiKey.objects.filter(pk=key.pk, last_used_at=key.last_used_at).update(last_used_at=now)
        key.last_used_at = now
    return _info(key)
