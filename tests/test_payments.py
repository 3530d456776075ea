"""Payments: idempotent operations, the test gateway end to end, notifications, timeouts, Stripe adapter."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections

from kernel.db import db_for_module
from payments import services
from payments.gateways.test_gateway import SIGNATURE_HEADER, TestGateway, sign
from payments.models import Payment, TestGatewayCharge, Transaction
from tests import outbox

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
NOTIFY = "/payments/notify/test/"


def start(reference="ORD-1001", amount="42.10", key=None, **kw) -> services.PaymentInfo:
    return services.payment_authorize(
        reference=reference, amount=Decimal(amount), currency="EUR", idempotency_key=key or f"checkout:{reference}",
        return_url="http://testserver/checkout/return/", notify_url="http://testserver" + NOTIFY, **kw,
    )  # fmt: skip


def pay(client, payment: services.PaymentInfo, card: str, monkeypatch) -> TestGatewayCharge:
    """The customer pays on the hosted page; the gateway's callback is handed to the shop's webhook."""
    sent = []
    monkeypatch.setattr("payments.views.test_gateway_notify.delay", lambda charge_id: sent.append(charge_id))
    response = client.post(payment.redirect_url, {"card_number": card})
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/checkout/return/"
    charge = TestGatewayCharge.objects.get(token=Payment.objects.get(pk=payment.id).gateway_reference)
    for charge_id in sent:
        body, headers = TestGateway().notification(TestGatewayCharge.objects.get(pk=charge_id))
        posted = client.post(NOTIFY, body, content_type="application/json", headers=headers)
        assert posted.status_code == 200, posted.content
    return charge


def events() -> list[str]:
    return outbox.names()


def authorized(client, monkeypatch, **kw) -> services.PaymentInfo:
    payment = start(**kw)
    pay(client, payment, "4242 4242 4242 4242", monkeypatch)
    info = services.payment_get(payment_id=payment.id)
    assert info.status == "authorized"
    return info


def test_payments_get_reads_several_payments_in_one_query_and_skips_unknown_ids(django_assert_num_queries):
    first, second = start("ORD-1"), start("ORD-2")
    payments_db = connections[db_for_module("payments")]
    with django_assert_num_queries(1, connection=payments_db):
        found = services.payments_get(payment_ids=[first.id, second.id, first.id, 999_999])
    assert found == {first.id: services.payment_get(payment_id=first.id),
                     second.id: services.payment_get(payment_id=second.id)}  # fmt: skip
    with django_assert_num_queries(0, connection=payments_db):
        assert services.payments_get(payment_ids=[]) == {}


# ---------------------------------------------------------------- authorise, idempotently


def test_hosted_page_flow_authorises_and_publishes(client, monkeypatch):
    payment = start()
    assert payment.status == "pending"
    assert payment.redirect_url.startswith("/payments/test-gateway/pay/")
    page = client.get(payment.redirect_url).content.decode()
    assert "Pay 42.10 EUR" in page
    assert "4242 4242 4242 4242" in page, "the test cards are documented on the page"
    pay(client, payment, "4242424242424242", monkeypatch)
    info = services.payment_get(payment_id=payment.id)
    assert (info.status, info.amount_authorized) == ("authorized", Decimal("42.10"))
    assert events() == ["payments.payment.authorized.v1"]
    assert "4242" not in json.dumps(list(Payment.objects.values()), default=str), "the store keeps no card number"


def test_double_submit_gives_one_payment_and_one_authorisation(client, monkeypatch):
    first = start()
    second = start()
    assert first.id == second.id
    assert TestGatewayCharge.objects.count() == 1
    pay(client, first, "4242424242424242", monkeypatch)
    assert client.post(first.redirect_url, {"card_number": "4242424242424242"}).status_code == 302
    assert events() == ["payments.payment.authorized.v1"]
    with pytest.raises(services.IdempotencyConflict):
        start(amount="99.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_starts_one_payment():
    results, errors = [], []
    barrier = threading.Barrier(6)

    def submit() -> None:
        try:
            barrier.wait()
            results.append(start().id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(results)) == 1
    assert Payment.objects.count() == 1
    assert TestGatewayCharge.objects.count() == 1


@pytest.mark.parametrize(
    ("card", "code", "message"),
    [
        ("4000000000000002", "card_declined", "Your card was declined."),
        ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_declined_cards_fail_with_a_message_a_customer_understands(client, monkeypatch, card, code, message):
    payment = start()
    pay(client, payment, card, monkeypatch)
    info = services.payment_get(payment_id=payment.id)
    assert (info.status, info.failure_code) == ("failed", code)
    assert info.customer_message.startswith(message)
    assert events() == ["payments.payment.failed.v1"]
    assert outbox.events()[0]["payload"]["message"].startswith(message)


def test_timeout_leaves_the_payment_pending_until_the_periodic_task_asks(client, monkeypatch):
    payment = start()
    pay(client, payment, "4000000000000119", monkeypatch)
    info = services.payment_get(payment_id=payment.id)
    assert info.status == "pending"
    assert info.customer_message.startswith("We are waiting for your bank")
    assert events() == []
    assert services.payments_resolve_pending() == 0, "too recent to ask yet"
    assert services.payments_resolve_pending(older_than=timedelta(0)) == 1
    assert services.payment_get(payment_id=payment.id).status == "authorized"
    assert events() == ["payments.payment.authorized.v1"]


def test_unreachable_gateway_fails_cleanly(monkeypatch):
    from payments.gateways import GatewayUnavailable

    def down(self, **kwargs):
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr(TestGateway, "start", down)
    info = start()
    assert (info.status, info.failure_code) == ("failed", "gateway_unavailable")
    assert "Nothing was charged" in info.customer_message


# ---------------------------------------------------------------- capture, void, refund


def test_capture_in_parts_then_refund_never_more_than_captured(client, monkeypatch):
    payment = authorized(client, monkeypatch)
    services.payment_capture(payment_id=payment.id, amount=Decimal("30.00"), idempotency_key="ship-1")
    again = services.payment_capture(payment_id=payment.id, amount=Decimal("30.00"), idempotency_key="ship-1")
    assert again.amount_captured == Decimal("30.00"), "the same key never captures twice"
    with pytest.raises(services.OperationNotAllowed):
        services.payment_capture(payment_id=payment.id, amount=Decimal("20.00"), idempotency_key="ship-2")
    info = services.payment_capture(payment_id=payment.id, idempotency_key="ship-3")
    assert info.amount_captured == Decimal("42.10")

    with pytest.raises(services.RefundExceedsCaptured):
        services.payment_refund(payment_id=payment.id, amount=Decimal("50.00"), idempotency_key="r-1")
    services.payment_refund(payment_id=payment.id, amount=Decimal("10.00"), idempotency_key="r-2")
    with pytest.raises(services.IdempotencyConflict):
        services.payment_refund(payment_id=payment.id, amount=Decimal("11.00"), idempotency_key="r-2")
    with pytest.raises(services.RefundExceedsCaptured):
        services.payment_refund(payment_id=payment.id, amount=Decimal("32.11"), idempotency_key="r-3")
    final = services.payment_refund(payment_id=payment.id, idempotency_key="r-4")
    assert (final.status, final.amount_refunded) == ("refunded", Decimal("42.10"))
    charge = TestGatewayCharge.objects.get()
    assert (charge.captured, charge.refunded) == (Decimal("42.10"), Decimal("42.10")), "the gateway agrees"
    assert events()[1:] == ["payments.payment.captured.v1"] * 2 + ["payments.payment.refunded.v1"] * 2


def test_void_releases_an_uncaptured_authorisation_only(client, monkeypatch):
    payment = authorized(client, monkeypatch)
    assert services.payment_void(payment_id=payment.id, idempotency_key="cancel-1").status == "voided"
    assert events()[-1] == "payments.payment.voided.v1"
    with pytest.raises(services.OperationNotAllowed):
        services.payment_capture(payment_id=payment.id, idempotency_key="ship-1")
    other = authorized(client, monkeypatch, reference="ORD-1002")
    services.payment_capture(payment_id=other.id, idempotency_key="ship-2")
    with pytest.raises(services.OperationNotAllowed):
        services.payment_void(payment_id=other.id, idempotency_key="cancel-2")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_captures_capture_once(client, monkeypatch):
    payment = authorized(client, monkeypatch)
    barrier = threading.Barrier(6)
    outcomes, errors = [], []

    def capture(i: int) -> None:
        try:
            barrier.wait()
            info = services.payment_capture(payment_id=payment.id, idempotency_key=f"ship-{i % 2}")
            outcomes.append(info.amount_captured)
        except services.OperationNotAllowed:
            outcomes.append("refused")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=capture, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert services.payment_get(payment_id=payment.id).amount_captured == Decimal("42.10")
    assert TestGatewayCharge.objects.get().captured == Decimal("42.10"), "the gateway captured once"
    assert Transaction.objects.filter(kind="capture", result="success").count() == 1
    assert events().count("payments.payment.captured.v1") == 1


def test_a_capture_that_times_out_stays_pending_and_is_finished_by_the_periodic_task(client, monkeypatch):
    from payments.gateways import GatewayTimeout

    payment = authorized(client, monkeypatch)
    real = TestGateway.capture
    monkeypatch.setattr(TestGateway, "capture", lambda self, **kw: (_ for _ in ()).throw(GatewayTimeout("slow")))
    info = services.payment_capture(payment_id=payment.id, idempotency_key="ship-1")
    assert info.amount_captured == 0
    assert Transaction.objects.get(kind="capture").result == "pending"
    monkeypatch.setattr(TestGateway, "capture", real)
    services.payments_resolve_pending(older_than=timedelta(0))
    assert services.payment_get(payment_id=payment.id).amount_captured == Decimal("42.10")


# ---------------------------------------------------------------- notifications


def signed(payload: dict) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, {SIGNATURE_HEADER: sign(body)}


def charge_event(charge: TestGatewayCharge, status: str, event_id: str, captured: str = "0") -> dict:
    return {"id": event_id, "type": f"charge.{status}", "created": int(time.time()),
            "data": {"token": charge.token, "status": status, "amount": str(charge.amount), "currency": "EUR",
                     "captured": captured, "refunded": "0", "decline_code": ""}}  # fmt: skip


def post(client, body: bytes, headers: dict):
    return client.post(NOTIFY, body, content_type="application/json", headers=headers)


def test_replayed_and_out_of_order_notifications_apply_once_and_stay_consistent(client):
    payment = start()
    charge = TestGatewayCharge.objects.get()
    captured = charge_event(charge, "captured", "evt_2", captured="42.10")
    assert post(client, *signed(captured)).json() == {"status": "applied"}, "the later event arrives first"
    assert post(client, *signed(captured)).json() == {"status": "duplicate"}
    assert post(client, *signed(charge_event(charge, "authorized", "evt_1"))).json() == {"status": "applied"}
    info = services.payment_get(payment_id=payment.id)
    assert (info.status, info.amount_authorized, info.amount_captured) == ("captured", Decimal("42.10"),
                                                                          Decimal("42.10"))  # fmt: skip
    assert events() == ["payments.payment.authorized.v1", "payments.payment.captured.v1"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace(b"authorized", b"captured"), headers),  # body changed after signing
        lambda body, headers: (body, {}),  # unsigned
        lambda body, headers: (body, {SIGNATURE_HEADER: "t=1,v1=" + "0" * 64}),  # stale and wrong
        lambda body, headers: (body, {SIGNATURE_HEADER: sign(body, int(time.time()) - 3600)}),  # stale
        lambda body, headers: (body, {SIGNATURE_HEADER: "garbage"}),
    ],
)
def test_tampered_unsigned_or_stale_notifications_get_400_and_change_nothing(client, tamper):
    payment = start()
    body, headers = signed(charge_event(TestGatewayCharge.objects.get(), "authorized", "evt_1"))
    response = post(client, *tamper(body, headers))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_notification"
    assert services.payment_get(payment_id=payment.id).status == "pending"
    assert events() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"id": 5, "type": [], "data": "x"}', 400),
        (
            b'{"id": "evt_1", "type": "charge.authorized", "data": {"token": "nope", "status": "authorized",'
            b' "amount": "1.00"}}',
            404,
        ),
        (b'{"id": "evt_1", "type": "x", "data": {"token": "t", "status": "weird", "amount": "1"}}', 400),
        (b'{"id": "evt_1", "type": "x", "data": {"token": "t", "status": "authorized", "amount": "abc"}}', 400),
        (b"[]", 400),
    ],
)
def test_malformed_notifications_get_a_4xx(client, body, status):
    start()
    response = post(client, body, {SIGNATURE_HEADER: sign(body)})
    assert response.status_code == status
    assert "error" in response.json()


def test_huge_notifications_are_refused_unread(client):
    body = b"{" + b" " * (70 * 1024) + b"}"
    response = post(client, body, {SIGNATURE_HEADER: sign(body)})
    assert response.status_code == 413


def test_the_test_gateway_can_be_switched_off(client, settings):
    payment = start()
    settings.PAYMENTS_TEST_GATEWAY_ENABLED = False
    assert client.get(payment.redirect_url).status_code == 404
    body, headers = signed(charge_event(TestGatewayCharge.objects.get(), "authorized", "evt_1"))
    assert post(client, body, headers).status_code == 404
    with pytest.raises(services.GatewayUnavailable):
        start(reference="ORD-9")
    assert services.payment_get(payment_id=payment.id).status == "pending"


def test_notifications_only_by_post(client):
    assert client.get(NOTIFY).status_code == 405
    assert client.post("/payments/notify/nope/", b"{}", content_type="application/json").status_code == 404


# ---------------------------------------------------------------- admin


def test_admin_refund_and_void_go_through_the_services(client, monkeypatch):
    from tests.factories import SuperuserFactory

    payment = authorized(client, monkeypatch)
    services.payment_capture(payment_id=payment.id, idempotency_key="ship-1")
    client.force_login(SuperuserFactory())
    url = "/admin/payments/payment/"
    response = client.post(url, {"action": "refund_captured", "_selected_action": [payment.id]}, follow=True)
    assert "refunded" in response.content.decode()
    assert services.payment_get(payment_id=payment.id).status == "refunded"
    response = client.post(url, {"action": "void_authorisation", "_selected_action": [payment.id]}, follow=True)
    assert "cannot be voided" in response.content.decode()
    assert client.get(f"{url}{payment.id}/change/").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pressing_pay_five_times_at_once_pays_the_charge_once_and_notifies_once(monkeypatch):
    """As a real gateway: one charge is paid once, whatever the browser sends."""
    from django.test import Client

    payment = start(reference="ORD-5X")
    sent = []
    monkeypatch.setattr("payments.views.test_gateway_notify.delay", lambda charge_id: sent.append(charge_id))
    barrier = threading.Barrier(5)
    answers = []

    def press() -> None:
        client = Client()
        barrier.wait()
        answers.append(client.post(payment.redirect_url, {"card_number": "4242424242424242"}).status_code)
        connections.close_all()

    threads = [threading.Thread(target=press) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [302] * 5, "every press goes back to the shop"
    assert len(sent) == 1, "one notification"
    assert TestGatewayCharge.objects.get(token=Payment.objects.get(pk=payment.id).gateway_reference).status == (
        "authorized"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_press_while_the_first_is_still_at_the_gateway_gets_the_gateways_page(monkeypatch):
    """Five presses of "Place order": one payment is started; every press, even one that arrives while the first
    is still waiting for the gateway, is sent to the gateway's page (not to a return page that waits forever)."""
    real_start = TestGateway.start

    def slow_start(self, **kwargs):
        time.sleep(0.5)  # the gateway takes its time to answer the first press
        return real_start(self, **kwargs)

    monkeypatch.setattr(TestGateway, "start", slow_start)
    barrier = threading.Barrier(5)
    urls = []

    def press() -> None:
        barrier.wait()
        urls.append(start(reference="ORD-DBL").redirect_url)
        connections.close_all()

    threads = [threading.Thread(target=press) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Payment.objects.count() == 1
    assert len(set(urls)) == 1
    assert urls[0].startswith("/payments/test-gateway/pay/")
