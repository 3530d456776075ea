"""Helpers for the REST API tests: keys with given scopes and clients that send them.

client = key_client("orders:read")            # an APIClient whose requests carry a fresh key
client, key = key_client_and_key("orders:read")
response = client.get("/api/v1/orders/")
"""

from __future__ import annotations

from rest_framework.test import APIClient

from accounts.services import API_SCOPES, ApiKeyInfo, api_key_create, api_key_revoke

ALL_SCOPES = API_SCOPES


def make_key(*scopes: str, name: str = "test integrator", **fields) -> tuple[ApiKeyInfo, str]:
    return api_key_create(name=name, scopes=scopes, **fields)


def client_with(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def key_client_and_key(*scopes: str) -> tuple[APIClient, ApiKeyInfo]:
    info, token = make_key(*scopes)
    return client_with(token), info


def key_client(*scopes: str) -> APIClient:
    return key_client_and_key(*scopes)[0]


def revoked_client(*scopes: str) -> APIClient:
    info, token = make_key(*scopes)
    api_key_revoke(key_id=info.id)
    return client_with(token)


def other_scopes(*needed: str) -> tuple[str, ...]:
    """Every scope that does not cover any of `needed` (what a key lacking them may still have)."""
    from accounts.services import scope_granted

    return tuple(s for s in ALL_SCOPES if not any(scope_granted([s], n) for n in needed))


def error_code(response) -> str:
    return response.json()["error"]["code"]
