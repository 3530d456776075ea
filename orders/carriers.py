"""Signed delivery updates from carriers. Private to orders.

A carrier POSTs JSON to /orders/carrier/<carrier>/:

    {"id": "evt_123", "tracking_number": "JD0002", "status": "delivered", "occurred_at": "2026-12-01T10:00:00Z"}

with the header `Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the carrier's
secret>` (ORDERS_CARRIER_SECRETS). Several v1= values may be given while a secret is rotated. A timestamp further
than ORDERS_CARRIER_TOLERANCE_SECONDS from now is refused (a replay of an old request), and an update is applied
once per (carrier, id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.conf import settings

MAX_BODY_BYTES = 16 * 1024
STATUSES = {"in_transit", "out_for_delivery", "delivered", "failed_attempt", "returned_to_sender"}


class CarrierUpdateRejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class CarrierUpdate:
    event_id: str
    tracking_number: str
    status: str


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(carrier: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value a carrier sends (for tests and for carriers' integration docs)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(settings.ORDERS_CARRIER_SECRETS[carrier], timestamp, body)}"


def verify(carrier: str, body: bytes, header: str, *, now: float | None = None) -> CarrierUpdate:
    """The update, if the carrier is known, the signature right and fresh, and the body well formed.
    Raises CarrierUpdateRejected with the HTTP status to answer."""
    secret = settings.ORDERS_CARRIER_SECRETS.get(carrier)
    if not secret:
        raise CarrierUpdateRejected(404, "unknown_carrier", "No such carrier.")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        raise CarrierUpdateRejected(401, "bad_signature", "Carrier-Signature needs t=<unix time>,v1=<hmac>.") from None
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise CarrierUpdateRejected(401, "bad_signature", "The signature does not match this body.")
    if abs((time.time() if now is None else now) - timestamp) > settings.ORDERS_CARRIER_TOLERANCE_SECONDS:
        raise CarrierUpdateRejected(400, "stale", "The timestamp is too far from now; replays are refused.")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CarrierUpdateRejected(400, "malformed", "The body is not JSON.") from None
    if not isinstance(data, dict):
        raise CarrierUpdateRejected(400, "malformed", "The body must be a JSON object.")
    fields = {}
    for name in ("id", "tracking_number", "status"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise CarrierUpdateRejected(400, "malformed", f"'{name}' must be a non-empty string (100 at most).")
        fields[name] = value.strip()
    if fields["status"] not in STATUSES:
        raise CarrierUpdateRejected(400, "malformed", f"'status' must be one of {', '.join(sorted(STATUSES))}.")
    return CarrierUpdate(fields["id"], fields["tracking_number"], fields["status"])
