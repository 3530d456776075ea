"""Stripe adapter: Checkout with manual capture (authorise at checkout, capture when the goods ship).

Configured by STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET. Webhooks are verified with Stripe's own signature check
(stripe.Webhook.construct_event): unsigned, tampered or stale (older than 5 minutes) requests are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

import stripe
from django.conf import settings

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

ZERO_DECIMAL = {"JPY", "KRW", "CLP", "VND", "ISK"}
WEBHOOK_TOLERANCE = 300


def to_minor(amount: Decimal, currency: str) -> int:
    return int(amount if currency.upper() in ZERO_DECIMAL else (amount * 100).to_integral_value())


def from_minor(value: int | None, currency: str) -> Decimal:
    value = value or 0
    return Decimal(value) if currency.upper() in ZERO_DECIMAL else Decimal(value) / 100


def _intent_status(intent) -> GatewayStatus:
    currency = intent["currency"]
    state = {
        "requires_capture": "authorized",
        "succeeded": "captured",
        "canceled": "voided",
        "requires_payment_method": "failed",
    }.get(intent["status"], "pending")
    error = intent.get("last_payment_error") or {}
    authorized = from_minor(intent.get("amount_capturable"), currency) + from_minor(
        intent.get("amount_received"), currency
    )
    refunded = Decimal(0)
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        refunded = from_minor(charge.get("amount_refunded"), currency)
        if charge.get("refunded"):
            state = "refunded"
    return GatewayStatus(
        state,
        amount_authorized=authorized,
        amount_captured=from_minor(intent.get("amount_received"), currency),
        amount_refunded=refunded,
        error_code=str(error.get("decline_code") or error.get("code") or ""),
        alias=intent["id"],
    )


class StripeGateway(Gateway):
    name = "stripe"

    def __init__(self, http_client: stripe.HTTPClient | None = None) -> None:
        self._http_client = http_client

    def client(self) -> stripe.StripeClient:
        if not settings.STRIPE_SECRET_KEY:
            raise GatewayUnavailable("Stripe is not configured (STRIPE_SECRET_KEY)")
        return stripe.StripeClient(settings.STRIPE_SECRET_KEY, http_client=self._http_client, max_network_retries=2)

    def _call(self, operation):
        try:
            result = operation()
            return result.to_dict() if hasattr(result, "to_dict") else result
        except stripe.APIConnectionError as exc:
            raise GatewayTimeout(str(exc)) from exc
        except stripe.CardError as exc:
            return exc
        except stripe.StripeError as exc:
            raise GatewayUnavailable(str(exc)) from exc

    def start(self, *, amount, currency, reference, idempotency_key, return_url, notify_url) -> StartResult:
        params = {
            "mode": "payment",
            "client_reference_id": reference,
            "success_url": return_url,
            "cancel_url": return_url,
            "payment_intent_data": {"capture_method": "manual", "metadata": {"reference": reference}},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": to_minor(amount, currency),
                        "product_data": {"name": f"Order {reference}"},
                    },
                }
            ],
        }
        session = self._call(
            lambda: self.client().v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})
        )
        if isinstance(session, stripe.StripeError):
            raise GatewayUnavailable(str(session))
        return StartResult(session["url"], session["id"])

    def _intent_id(self, gateway_reference: str) -> str:
        if gateway_reference.startswith("pi_"):
            return gateway_reference
        session = self._call(lambda: self.client().v1.checkout.sessions.retrieve(gateway_reference))
        intent = session.get("payment_intent")
        if not intent:
            raise GatewayUnavailable("the customer has not paid yet")
        return intent["id"] if isinstance(intent, dict) else str(intent)

    def _operation(self, call) -> OperationResult:
        result = self._call(call)
        if isinstance(result, stripe.StripeError):
            return OperationResult(False, error_code=str(getattr(result, "code", "") or "card_error"))
        return OperationResult(True, gateway_reference=result["id"])

    def capture(self, *, gateway_reference, amount, currency, idempotency_key) -> OperationResult:
        intent = self._intent_id(gateway_reference)
        params = {"amount_to_capture": to_minor(amount, currency)}
        return self._operation(
            lambda: self.client().v1.payment_intents.capture(intent, params, {"idempotency_key": idempotency_key})
        )

    def void(self, *, gateway_reference, idempotency_key) -> OperationResult:
        intent = self._intent_id(gateway_reference)
        return self._operation(
            lambda: self.client().v1.payment_intents.cancel(intent, None, {"idempotency_key": idempotency_key})
        )

    def refund(self, *, gateway_reference, amount, currency, idempotency_key) -> OperationResult:
        params = {"payment_intent": self._intent_id(gateway_reference), "amount": to_minor(amount, currency)}
        return self._operation(lambda: self.client().v1.refunds.create(params, {"idempotency_key": idempotency_key}))

    def fetch_status(self, *, gateway_reference) -> GatewayStatus:
        if gateway_reference.startswith("pi_"):
            intent = self._call(
                lambda: self.client().v1.payment_intents.retrieve(gateway_reference, {"expand": ["latest_charge"]})
            )
            return _intent_status(intent)
        session = self._call(
            lambda: self.client().v1.checkout.sessions.retrieve(
                gateway_reference, {"expand": ["payment_intent.latest_charge"]}
            )
        )
        intent = session.get("payment_intent")
        if not intent:
            return GatewayStatus("failed" if session.get("status") == "expired" else "pending")
        return _intent_status(intent)

    def parse_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise InvalidNotification("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"),
                headers.get("Stripe-Signature") or "",
                settings.STRIPE_WEBHOOK_SECRET,
                WEBHOOK_TOLERANCE,
            )
            event = json.loads(body)
        except stripe.SignatureVerificationError as exc:
            raise InvalidNotification(f"bad Stripe signature: {exc.user_message or exc}") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidNotification("malformed Stripe event") from None
        try:
            obj = event["data"]["object"]
            kind = event["type"]
            if not isinstance(obj, dict) or not isinstance(kind, str) or not isinstance(event["id"], str):
                raise TypeError
            merchant = str((obj.get("metadata") or {}).get("reference") or obj.get("client_reference_id") or "")
            if kind == "checkout.session.completed":
                reference = obj["id"]
                status = GatewayStatus("pending")  # the intent's state is fetched: the session says too little
            elif obj.get("object") == "payment_intent":
                reference = obj["id"]
                status = _intent_status(obj)
            elif obj.get("object") == "charge":
                reference = obj["payment_intent"]
                currency = obj["currency"]
                state = "refunded" if obj.get("refunded") else "captured" if obj.get("captured") else "authorized"
                status = GatewayStatus(
                    state,
                    amount_authorized=from_minor(obj.get("amount"), currency),
                    amount_captured=from_minor(obj.get("amount_captured"), currency),
                    amount_refunded=from_minor(obj.get("amount_refunded"), currency),
                )
            else:
                raise InvalidNotification(f"unsupported Stripe event {kind}")
        except (KeyError, TypeError, AttributeError):
            raise InvalidNotification("malformed Stripe event") from None
        return Notification(str(event["id"]), str(kind), str(reference), status, event, merchant)
