"""Paying again on the same order after a declined card (or after leaving the gateway's page): one order number,
a new payment per attempt, never two charges kept, and the reservation's expiry still ending an unpaid order."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from catalog.models import Reservation, StockItem
from catalog.services import reservations_expire
from orders import services as orders
from orders.models import Order, StatusChange
from payments.gateways.test_gateway import TestGateway
from payments.models import Payment, TestGatewayCharge, Transaction
from shop import services as shop
from tests.factories import UserFactory, make_category, make_product
from tests.test_checkout import pay_on_gateway, to_review

pytestmark = [pytest.mark.modules]
GOOD, DECLINED, NO_FUNDS = "4242424242424242", "4000000000000002", "4000000000009995"


@pytest.fixture
def lamp():
    variants = [{"options": {"Colour": "Brass"}, "price": "80.00", "stock": 3}]
    return make_product("Brass Lamp", make_category("Lighting"), variants=variants).variants.get()


def stock(variant) -> tuple[int, int]:
    item = StockItem.objects.get(variant=variant)
    return item.on_hand, item.reserved


def attempt_on(page: str) -> str:
    return re.search(r'name="attempt" value="(\d+)"', page).group(1)


def declined_order(client, variant, callbacks, card: str = DECLINED) -> tuple[Order, str]:
    """Place an order as a guest and have its card declined; returns the order and the return page's address."""
    token = to_review(client, variant)
    with callbacks(execute=True):
        location = client.post("/checkout/place/", {"token": token})["Location"]
        back = pay_on_gateway(client, location, card)
    return Order.objects.get(), back


def pay_again(client, order: Order, attempt: str = "2", token: str | None = None):
    data = {"attempt": attempt, "t": order.access_token if token is None else token}
    return client.post(f"/checkout/pay-again/{order.number}/", data)


def notes(order: Order) -> list[str]:
    return list(StatusChange.objects.filter(order=order).values_list("note", flat=True))


@pytest.mark.django_db
def test_declined_then_paid_again_with_another_card_keeps_one_order(client, lamp, django_capture_on_commit_callbacks):
    order, back = declined_order(client, lamp, django_capture_on_commit_callbacks)
    page = client.get(back).content.decode()
    assert "Your card was declined." in page
    assert "Pay again" in page
    assert order.number in page
    assert len(client.get("/cart/").context["cart"].lines) == 1, "the cart stays as it was"
    assert stock(lamp) == (3, 1), "the stock is still held for the order"
    detail = client.get(f"/orders/{order.number}/?t={order.access_token}").content.decode()
    assert "Payment failed: Your card was declined." in detail
    assert 'name="attempt" value="2"' in detail

    with django_capture_on_commit_callbacks(execute=True):
        location = pay_again(client, order, attempt_on(page))["Location"]
        assert location.startswith("/payments/test-gateway/pay/")
        back_again = pay_on_gateway(client, location, GOOD)
    assert back_again == back, "the same order's return page"
    page = client.get(back_again).content.decode()
    assert "Thank you! Your order is confirmed." in page
    assert order.number in page

    assert Order.objects.count() == 1
    order.refresh_from_db()
    first, second = Payment.objects.filter(reference=order.number).order_by("id")
    assert (first.status, second.status) == ("failed", "authorized")
    assert second.idempotency_key == f"{order.number}:attempt:2"
    assert (order.status, order.payment_id, order.payment_attempt, order.payment_failure) == (
        "paid", second.pk, 2, "")  # fmt: skip
    assert [n for n in notes(order) if n.startswith("Payment")] == [
        "Payment failed: Your card was declined. Please try another card, or ask your bank why.",
        "Payment attempt 2 started",
        "Payment authorised",
    ]
    assert StatusChange.objects.filter(order=order, to_status="paid").count() == 1, "paid once"
    assert stock(lamp) == (2, 0), "sold once"
    assert list(Reservation.objects.values_list("status", flat=True)) == ["committed"]
    assert len([m for m in mail.outbox if "confirmed" in m.subject]) == 1, "one confirmation email"
    assert client.get("/cart/").context["cart"].lines == (), "the paid order's cart is emptied"


@pytest.mark.django_db
def test_a_declined_order_ends_when_its_reservation_expires(client, lamp, django_capture_on_commit_callbacks):
    order, back = declined_order(client, lamp, django_capture_on_commit_callbacks, NO_FUNDS)
    assert stock(lamp) == (3, 1)
    assert reservations_expire(now=timezone.now() + timedelta(hours=1)) == 1, "catalog frees the stock"
    assert stock(lamp) == (3, 0)
    with django_capture_on_commit_callbacks(execute=True):
        assert orders.orders_expire_unpaid(older_than_minutes=-1) == 1, "and orders cancels the unpaid order"
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert stock(lamp) == (3, 0)
    assert "This order was cancelled" in client.get(back).content.decode()

    refused = pay_again(client, order)
    assert refused["Location"] == f"/checkout/return/{order.number}/?t={order.access_token}"
    assert "no longer awaiting payment" in client.get(refused["Location"]).content.decode()
    assert Payment.objects.count() == 1, "nothing started for a cancelled order"


@pytest.mark.django_db
def test_a_guest_pays_again_with_the_signed_link_and_nobody_else_can(client, lamp, django_capture_on_commit_callbacks):
    order, _ = declined_order(client, lamp, django_capture_on_commit_callbacks)
    assert pay_again(Client(), order, token="").status_code == 404, "another visitor, without the link"
    assert pay_again(Client(), order, token="wrong").status_code == 404
    stranger = Client()
    stranger.force_login(UserFactory())
    assert pay_again(stranger, order, token="").status_code == 404, "a signed-in customer, not theirs"
    assert Payment.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = pay_again(Client(), order)  # the guest, from their email's link in another browser
    assert response["Location"].startswith("/payments/test-gateway/pay/")
    assert Payment.objects.count() == 2
    assert StatusChange.objects.filter(order=order, note="Payment attempt 2 started").get().actor == "guest"


@pytest.mark.django_db
def test_a_signed_in_customer_sees_the_failure_in_the_history_and_pays_again(lamp, django_capture_on_commit_callbacks):
    client = Client()
    user = UserFactory()
    client.force_login(user)
    order, _ = declined_order(client, lamp, django_capture_on_commit_callbacks)
    history = client.get("/orders/").content.decode()
    assert "Payment failed: Your card was declined." in history
    assert attempt_on(history) == "2"
    with django_capture_on_commit_callbacks(execute=True):
        location = client.post(f"/checkout/pay-again/{order.number}/", {"attempt": "2"})["Location"]
        pay_on_gateway(client, location, GOOD)
    order.refresh_from_db()
    assert order.status == "paid"
    assert "Payment failed" not in client.get("/orders/").content.decode()
    attempt = StatusChange.objects.filter(order=order, note="Payment attempt 2 started").get()
    assert attempt.actor == f"customer:{user.pk}"


@pytest.mark.django_db
def test_an_out_of_date_pay_again_form_starts_nothing(client, lamp, django_capture_on_commit_callbacks):
    order, _ = declined_order(client, lamp, django_capture_on_commit_callbacks)
    for attempt in ("1", "3", "", "x"):
        response = pay_again(client, order, attempt)
        assert response["Location"].startswith(f"/checkout/return/{order.number}/"), attempt
    assert Payment.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        first = pay_again(client, order, "2")["Location"]
        again = pay_again(client, order, "2")["Location"]  # the browser sends the form again
    assert first == again
    assert Payment.objects.count() == 2
    assert notes(Order.objects.get()).count("Payment attempt 2 started") == 1
    Order.objects.update(payment_attempt=10)
    response = pay_again(client, order, "11")
    assert "tried too many times" in client.get(response["Location"]).content.decode()
    assert Payment.objects.count() == 2, "at most 10 attempts per order"


@pytest.mark.django_db
def test_the_gateway_page_leads_back_to_the_shop_and_the_customer_pays_again(
    client, lamp, django_capture_on_commit_callbacks
):
    token = to_review(client, lamp)
    with django_capture_on_commit_callbacks(execute=True):
        location = client.post("/checkout/place/", {"token": token})["Location"]
    gateway = client.get(location).content.decode()
    link = re.search(r'<a href="([^"]+)">Cancel and return to the shop</a>', gateway).group(1).replace("&amp;", "&")
    order = Order.objects.get()
    signed = orders.order_find(number=order.number).link_token  # the signed guest token, not the order's secret
    assert link == f"http://testserver/checkout/return/{order.number}/?t={signed}&cancelled=1"
    assert order.access_token not in link
    page = client.get(link).content.decode()
    assert "You left the payment page" in page
    assert 'http-equiv="refresh"' not in page, "nothing to wait for"
    with django_capture_on_commit_callbacks(execute=True):
        second = pay_again(client, order, attempt_on(page))["Location"]
        pay_on_gateway(client, second, GOOD)
    order.refresh_from_db()
    assert order.status == "paid"
    assert Payment.objects.filter(reference=order.number).count() == 2


@pytest.mark.django_db
def test_pay_again_after_the_first_payment_went_through_is_refused(client, lamp, django_capture_on_commit_callbacks):
    """The customer paid, but the gateway's callback has not arrived and they came back by "Cancel": asking the
    gateway finds the payment authorised, so no second payment is started and the order is paid."""
    token = to_review(client, lamp)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/checkout/place/", {"token": token})
    TestGateway().pay(TestGatewayCharge.objects.get(), GOOD)  # paid at the gateway; no notification yet
    order = Order.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = pay_again(client, order)
    assert "went through" in client.get(response["Location"]).content.decode()
    order.refresh_from_db()
    assert order.status == "paid"
    assert Payment.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("late", ["first", "second"])
def test_two_attempts_both_paid_keep_one_authorisation(client, lamp, django_capture_on_commit_callbacks, late):
    """The customer leaves the gateway's page, pays again, and then pays the first attempt's page too (another tab,
    the back button), before or after the second: the first authorised pays the order; the other is voided."""
    token = to_review(client, lamp)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/checkout/place/", {"token": token})["Location"]
        order = Order.objects.get()
        second = pay_again(client, order)["Location"]
        assert first != second
        for location in (first, second) if late == "second" else (second, first):
            pay_on_gateway(client, location, GOOD)
    order.refresh_from_db()
    one, two = Payment.objects.filter(reference=order.number).order_by("id")
    winner, loser = (one, two) if late == "second" else (two, one)
    assert order.status == "paid"
    assert order.payment_id == winner.pk
    assert (winner.status, loser.status) == ("authorized", "voided")
    assert Transaction.objects.filter(kind="void", result="success").get().payment_id == loser.pk
    assert StatusChange.objects.filter(order=order, from_status="pending_payment", to_status="paid").count() == 1
    assert stock(lamp) == (2, 0), "sold once"
    assert len([m for m in mail.outbox if "confirmed" in m.subject]) == 1

    with django_capture_on_commit_callbacks(execute=True):
        orders.order_mark_paid(number=order.number, payment_id=loser.pk)  # its report delivered again
        shipped = orders.order_ship(number=order.number, actor="staff:1")
    assert Transaction.objects.filter(kind="void").count() == 1, "voided once, whatever is delivered again"
    captures = Transaction.objects.filter(kind="capture", result="success")
    assert [(c.payment_id, c.amount) for c in captures] == [(winner.pk, shipped.total)], "charged once"
    assert len([n for n in notes(order) if "went through too late" in n]) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_presses_of_pay_again_at_once_start_one_payment(lamp):
    """Real threads on PostgreSQL: both presses carry attempt 2 and get the same payment and the same page."""
    from tests.test_orders import pay, place

    order = place(lamp, 1, key="retry-race")
    pay(order, DECLINED)
    assert orders.order_find(number=order.number).payment_failed
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        try:
            barrier.wait()
            started = shop.checkout_pay_again(
                number=order.number,
                attempt=2,
                user_id=None,
                access_token=order.access_token,
                site_url="http://testserver",
            )
            outcomes.append(started.next_url)
        except BaseException as exc:
            outcomes.append(f"error: {type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes) == 2
    assert outcomes[0] == outcomes[1], outcomes
    assert outcomes[0].startswith("/payments/test-gateway/pay/")
    assert Payment.objects.filter(reference=order.number).count() == 2, "the first and one new attempt"
    assert TestGatewayCharge.objects.count() == 2
    row = Order.objects.get(number=order.number)
    assert (row.payment_attempt, row.payment_failure) == (2, "")
    assert notes(row).count("Payment attempt 2 started") == 1
