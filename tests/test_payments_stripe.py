"""The Stripe adapter without network: Stripe's answers are recorded responses (shapes from Stripe's API reference);
webhook signatures are checked for real by the stripe library."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import stripe

from payments import services
from payments.gateways import get_gateway
from tests import outbox

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
INTENT = {
    "id": "pi_3Pq", "object": "payment_intent", "status": "requires_capture", "amount": 4210,
    "amount_capturable": 4210, "amount_received": 0, "currency": "eur", "capture_method": "manual",
    "metadata": {"reference": "ORD-1001"}, "last_payment_error": None,
    "latest_charge": {"id": "ch_3Pq", "object": "charge", "amount_refunded": 0, "refunded": False},
}  # fmt: skip
RECORDED = {
    ("post", "/v1/checkout/sessions"): {
        "id": "cs_test_a1", "object": "checkout.session", "status": "open", "payment_intent": None,
        "url": "https://checkout.stripe.com/c/pay/cs_test_a1", "client_reference_id": "ORD-1001",
    },
    ("get", "/v1/checkout/sessions/cs_test_a1"): {
        "id": "cs_test_a1", "object": "checkout.session", "status": "complete", "payment_intent": INTENT,
    },
    ("post", "/v1/payment_intents/pi_3Pq/capture"): {
        **INTENT, "status": "succeeded", "amount_capturable": 0, "amount_received": 4210,
    },
    ("post", "/v1/refunds"): {"id": "re_1", "object": "refund", "amount": 1000, "status": "succeeded"},
}  # fmt: skip


class RecordedStripe(stripe.HTTPClient):
    """Answers each Stripe API call from RECORDED and remembers what was sent."""

    name = "recorded"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict, dict]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = url.split("api.stripe.com", 1)[1].split("?", 1)[0]
        sent = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.calls.append((method, path, sent, dict(headers or {})))
        body = RECORDED.get((method, path))
        if body is None:
            return json.dumps({"error": {"message": f"not recorded: {method} {path}"}}), 404, {}
        return json.dumps(body), 200, {"request-id": "req_test"}

    def close(self) -> None:
        pass


@pytest.fixture
def recorded(settings, monkeypatch) -> RecordedStripe:
    settings.STRIPE_SECRET_KEY = "sk_test_recorded"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    client = RecordedStripe()
    monkeypatch.setattr(get_gateway("stripe"), "_http_client", client)
    return client


def start_stripe() -> services.PaymentInfo:
    return services.payment_authorize(
        reference="ORD-1001", amount=Decimal("42.10"), currency="EUR", idempotency_key="checkout:ORD-1001",
        return_url="https://shop.example.com/checkout/return/",
        notify_url="https://shop.example.com/payments/notify/stripe/", gateway="stripe",
    )  # fmt: skip


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def webhook(client, event: dict, signature: str | None = "auto"):
    payload = json.dumps(event).encode()
    headers = {} if signature is None else {"Stripe-Signature": stripe_signature(payload) if signature == "auto"
                                                                 else signature}  # fmt: skip
    return client.post("/payments/notify/stripe/", payload, content_type="application/json", headers=headers)


def event(kind: str, obj: dict, event_id: str = "evt_1") -> dict:
    return {"id": event_id, "object": "event", "type": kind, "api_version": "2024-06-20", "created": int(time.time()),
            "data": {"object": obj}}  # fmt: skip


def test_checkout_session_with_manual_capture_and_idempotency_key(recorded):
    payment = start_stripe()
    assert payment.redirect_url == "https://checkout.stripe.com/c/pay/cs_test_a1"
    method, path, sent, headers = recorded.calls[0]
    assert (method, path) == ("post", "/v1/checkout/sessions")
    assert sent["payment_intent_data[capture_method]"] == "manual"
    assert sent["line_items[0][price_data][unit_amount]"] == "4210"
    assert sent["line_items[0][price_data][currency]"] == "eur"
    assert headers["Idempotency-Key"] == "checkout:ORD-1001"
    assert start_stripe().id == payment.id
    assert len(recorded.calls) == 1, "a repeated call does not reach Stripe again"


def test_signed_webhook_authorises_then_capture_and_refund_go_to_stripe(client, recorded):
    payment = start_stripe()
    assert webhook(client, event("payment_intent.amount_capturable_updated", INTENT)).json() == {"status": "applied"}
    assert services.payment_get(payment_id=payment.id).status == "authorized"
    assert webhook(client, event("payment_intent.amount_capturable_updated", INTENT)).json() == {"status": "duplicate"}

    captured = services.payment_capture(payment_id=payment.id, idempotency_key="ship-ORD-1001")
    assert captured.amount_captured == Decimal("42.10")
    _, path, sent, headers = recorded.calls[-1]
    assert path == "/v1/payment_intents/pi_3Pq/capture"
    assert sent == {"amount_to_capture": "4210"}
    assert headers["Idempotency-Key"] == "ship-ORD-1001"

    refunded = services.payment_refund(payment_id=payment.id, amount=Decimal("10.00"), idempotency_key="rf-1")
    assert refunded.amount_refunded == Decimal("10.00")
    assert recorded.calls[-1][2] == {"payment_intent": "pi_3Pq", "amount": "1000"}

    charge = {"id": "ch_3Pq", "object": "charge", "payment_intent": "pi_3Pq", "currency": "eur", "amount": 4210,
              "amount_captured": 4210, "amount_refunded": 1000, "captured": True, "refunded": False}  # fmt: skip
    assert webhook(client, event("charge.refunded", charge, "evt_2")).status_code == 200
    assert services.payment_get(payment_id=payment.id).amount_refunded == Decimal("10.00"), "not counted twice"
    names = outbox.names()
    assert names == ["payments.payment.authorized.v1", "payments.payment.captured.v1", "payments.payment.refunded.v1"]


def test_checkout_completed_makes_the_shop_ask_stripe(client, recorded):
    payment = start_stripe()
    session = {"id": "cs_test_a1", "object": "checkout.session", "client_reference_id": "ORD-1001"}
    assert webhook(client, event("checkout.session.completed", session)).status_code == 200
    assert services.payment_get(payment_id=payment.id).status == "authorized"
    assert recorded.calls[-1][:2] == ("get", "/v1/checkout/sessions/cs_test_a1")


@pytest.mark.parametrize(
    "signature",
    [
        None,  # unsigned
        "t=1,v1=abc",  # malformed and stale
        "stale",  # correctly signed, 10 minutes ago
        "wrong-secret",
        "tampered",
    ],
)
def test_unsigned_stale_or_tampered_stripe_webhooks_get_400_and_change_nothing(client, recorded, signature):
    payment = start_stripe()
    body = json.dumps(event("payment_intent.amount_capturable_updated", INTENT)).encode()
    headers = {}
    if signature == "stale":
        headers["Stripe-Signature"] = stripe_signature(body, at=int(time.time()) - 600)
    elif signature == "wrong-secret":
        headers["Stripe-Signature"] = stripe_signature(body, secret="whsec_someone_else")
    elif signature == "tampered":
        headers["Stripe-Signature"] = stripe_signature(body)
        body = body.replace(b"4210", b"9999")
    elif signature is not None:
        headers["Stripe-Signature"] = signature
    response = client.post("/payments/notify/stripe/", body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert services.payment_get(payment_id=payment.id).status == "pending"
    assert outbox.names() == []


def test_a_declined_intent_fails_the_payment_with_the_decline_reason(client, recorded):
    payment = start_stripe()
    declined = {**INTENT, "status": "requires_payment_method", "amount_capturable": 0,
                "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}}  # fmt: skip
    assert webhook(client, event("payment_intent.payment_failed", declined)).status_code == 200
    info = services.payment_get(payment_id=payment.id)
    assert (info.status, info.failure_code) == ("failed", "insufficient_funds")
    assert info.customer_message.startswith("Your card has insufficient funds")


def test_stripe_not_configured_is_a_clean_failure(settings):
    settings.STRIPE_SECRET_KEY = ""
    info = start_stripe()
    assert (info.status, info.failure_code) == ("failed", "gateway_unavailable")
