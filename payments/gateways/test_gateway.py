"""The built-in test gateway: a hosted card page under /payments/test-gateway/, its own books, signed callbacks.

Test cards (any future expiry date, any CVC):
    4242 4242 4242 4242   succeeds (authorised, captured later)
    4000 0000 0000 0002   declined
    4000 0000 0000 9995   declined: insufficient funds
    4000 0000 0000 0119   the gateway times out: the payment stays pending, no notification is sent, and the
                          store learns the outcome (authorised) only by asking for the payment's status later
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse

from kernel.db import atomic, unique_by
from payments.gateways import (
    Gateway,
    GatewayStatus,
    GatewayTimeout,
    GatewayUnavailable,
    InvalidNotification,
    Notification,
    OperationResult,
    StartResult,
)
from payments.models import TestGatewayCharge

SIGNATURE_HEADER = "X-Testgateway-Signature"
TOLERANCE_SECONDS = 300
CARDS = {
    "4242424242424242": ("authorized", ""),
    "4000000000000002": ("declined", "card_declined"),
    "4000000000009995": ("declined", "insufficient_funds"),
    "4000000000000119": ("timeout", ""),
    "4000000000000341": ("authorized", ""),  # authorised, but the bank does not answer its first capture
}
SLOW_CAPTURE_CARD = "4000000000000341"
SLOW = "_first_capture_times_out"  # a mark in the charge's operations
_STATE = {
    "created": "pending",
    "timeout": "pending",
    "authorized": "authorized",
    "declined": "failed",
    "captured": "captured",
    "voided": "voided",
    "refunded": "refunded",
}


def sign(body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(settings.PAYMENTS_TEST_GATEWAY_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _status(charge: TestGatewayCharge) -> GatewayStatus:
    state = _STATE.get(charge.status, "pending")
    authorized = charge.amount if state in ("authorized", "captured", "refunded", "voided") else Decimal(0)
    if charge.status == "timeout":
        state = "pending"
    return GatewayStatus(state, authorized, charge.captured, charge.refunded, charge.decline_code)


class TestGateway(Gateway):
    __test__ = False  # not a pytest test class
    name = "test"

    # ---------------------------------------------------------------- the store calls these

    def start(self, *, amount, currency, reference, idempotency_key, return_url, notify_url) -> StartResult:
        charge = TestGatewayCharge.objects.create(
            token=secrets.token_urlsafe(24),
            amount=amount,
            currency=currency,
            description=f"Payment {reference}",
            return_url=return_url,
            notify_url=notify_url,
        )
        return StartResult(reverse("payments:test-gateway-pay", args=[charge.token]), charge.token)

    def _operate(self, token: str, key: str, apply) -> OperationResult:
        with atomic(module="payments"):
            charge = unique_by(TestGatewayCharge, token=token, for_update=True)
            if charge is None:
                raise GatewayUnavailable("unknown charge")
            if key in charge.operations:  # the gateway's own idempotency: same key, same answer
                success, code = charge.operations[key]
                return OperationResult(success, token, code)
            success, code = apply(charge)
            charge.operations[key] = [success, code]
            charge.save()
        return OperationResult(success, token, code)

    def capture(self, *, gateway_reference, amount, currency, idempotency_key) -> OperationResult:
        with atomic(module="payments"):
            slow = TestGatewayCharge.objects.select_for_update().filter(token=gateway_reference).first()
            timed_out = slow is not None and bool(slow.operations.pop(SLOW, False))
            if timed_out:
                slow.save(update_fields=["operations"])
        if timed_out:  # after the commit: the next capture of this charge is answered
            raise GatewayTimeout("the test bank did not answer the capture")

        def apply(charge: TestGatewayCharge) -> tuple[bool, str]:
            if charge.status not in ("authorized", "captured") or charge.captured + amount > charge.amount:
                return False, "capture_not_allowed"
            charge.captured += amount
            charge.status = "captured"
            return True, ""

        return self._operate(gateway_reference, idempotency_key, apply)

    def void(self, *, gateway_reference, idempotency_key) -> OperationResult:
        def apply(charge: TestGatewayCharge) -> tuple[bool, str]:
            if charge.status not in ("authorized", "timeout") or charge.captured:
                return False, "void_not_allowed"
            charge.status = "voided"
            return True, ""

        return self._operate(gateway_reference, idempotency_key, apply)

    def refund(self, *, gateway_reference, amount, currency, idempotency_key) -> OperationResult:
        def apply(charge: TestGatewayCharge) -> tuple[bool, str]:
            if charge.refunded + amount > charge.captured:
                return False, "refund_exceeds_captured"
            charge.refunded += amount
            if charge.refunded == charge.captured == charge.amount:
                charge.status = "refunded"
            return True, ""

        return self._operate(gateway_reference, idempotency_key, apply)

    def fetch_status(self, *, gateway_reference) -> GatewayStatus:
        charge = unique_by(TestGatewayCharge, token=gateway_reference)
        if charge is None:
            raise GatewayUnavailable("unknown charge")
        if charge.status == "timeout":  # by the time anyone asks, the bank has answered
            charge.status = "authorized"
            charge.save(update_fields=["status"])
        return _status(charge)

    # ---------------------------------------------------------------- the customer pays on the hosted page

    def pay(self, charge: TestGatewayCharge, card_number: str) -> str | None:
        """Decide the card's outcome; returns it ("authorized", "declined" or "timeout"), or None if the charge
        was paid already: as a real gateway, one charge is paid once, however often its form is sent (the
        conditional update lets one of several presses of "Pay" at once through)."""
        outcome, code = CARDS.get(card_number, ("declined", "card_declined"))
        operations = dict(charge.operations or {})
        if card_number == SLOW_CAPTURE_CARD:
            operations[SLOW] = True
        paid = TestGatewayCharge.objects.filter(pk=charge.pk, status="created").update(
            status=outcome, decline_code=code, card_last4=card_number[-4:], operations=operations
        )
        if not paid:
            charge.refresh_from_db()
            return None
        charge.status, charge.decline_code, charge.card_last4, charge.operations = (
            outcome, code, card_number[-4:], operations
        )  # fmt: skip
        return outcome

    def notification(self, charge: TestGatewayCharge) -> tuple[bytes, dict[str, str]]:
        """The signed callback the gateway sends about a charge."""
        status = _status(charge)
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": f"charge.{charge.status}",
                "created": int(time.time()),
                "data": {
                    "token": charge.token,
                    "status": status.state,
                    "amount": str(charge.amount),
                    "currency": charge.currency,
                    "captured": str(charge.captured),
                    "refunded": str(charge.refunded),
                    "decline_code": charge.decline_code,
                },
            }
        ).encode()
        return body, {SIGNATURE_HEADER: sign(body), "Content-Type": "application/json"}

    # ---------------------------------------------------------------- the store receives callbacks

    def parse_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
            raise InvalidNotification("missing or malformed signature")
        if abs(time.time() - int(parts["t"])) > TOLERANCE_SECONDS:
            raise InvalidNotification("stale notification")
        expected = sign(body, int(parts["t"])).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts["v1"]):
            raise InvalidNotification("bad signature")
        try:
            payload = json.loads(body)
            data = payload["data"]
            fields = (payload["id"], payload["type"], data["token"], data["status"])
            if not all(isinstance(f, str) for f in fields) or not isinstance(data, dict):
                raise TypeError
            status = GatewayStatus(
                data["status"],
                Decimal(str(data["amount"])) if data["status"] != "pending" else Decimal(0),
                Decimal(str(data.get("captured", "0"))),
                Decimal(str(data.get("refunded", "0"))),
                str(data.get("decline_code", "")),
            )
        except (ValueError, KeyError, TypeError, InvalidOperation, AttributeError):
            raise InvalidNotification("malformed notification") from None
        if status.state not in ("pending", "authorized", "captured", "voided", "failed", "refunded"):
            raise InvalidNotification("unknown status")
        return Notification(payload["id"], payload["type"], data["token"], status, payload)
