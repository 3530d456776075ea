"""The customer's emails about an order, one per fact, HTML and text, each with the order's link; and the signed
link that lets a guest open their order."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from kernel import bus
from kernel.models import Delivery
from orders import services
from orders.models import Order, OrderEmail
from payments.services import payment_get
from tests import outbox
from tests.factories import UserFactory, make_category, make_product
from tests.test_checkout import pay_on_gateway
from tests.test_orders import ADDRESS, pay

pytestmark = [pytest.mark.modules, pytest.mark.django_db(transaction=True)]
SHOP = "Northwind Goods"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SHOP_SITE_URL = "https://shop.example.com"


@pytest.fixture
def goods():
    kitchen = make_category("Kitchen")
    kettle = make_product("Copper Kettle", kitchen, variants=[{"price": "30.00", "stock": 10}]).variants.get()
    mug = make_product("Stone Mug", kitchen, variants=[{"price": "8.00", "stock": 10}]).variants.get()
    return kettle, mug


def place(goods, key="emails-1", user_id=None) -> services.OrderInfo:
    kettle, mug = goods
    return services.order_place(idempotency_key=key, lines=[(kettle.pk, 1), (mug.pk, 2)], shipping_method="express",
                                shipping_address={**ADDRESS, "line2": "Flat 3"}, email="ada@example.com",
                                user_id=user_id)  # fmt: skip


def sent(subject_part: str) -> list[mail.EmailMultiAlternatives]:
    return [m for m in mail.outbox if subject_part in m.subject]


def html_of(message) -> str:
    (html, kind), *_ = message.alternatives
    assert kind == "text/html"
    return html


def link_in(text: str) -> str:
    return re.search(r"https://shop\.example\.com(/orders/\S+/(?:\?t=[\w\-]+)?)", text).group(1)


def redeliver_all(event_name: str, consumer: str) -> None:
    """Every event of that name handed to the consumer again, as after a lost acknowledgement."""
    for event in outbox.events(event_name):
        alias = outbox.alias_of(event["id"])
        Delivery.objects.using(alias).filter(event_id=event["id"], consumer=consumer).update(status="pending")
        bus.handle(event["id"], consumer, using=alias)


# ---------------------------------------------------------------- what each email says, and once


def test_the_confirmation_has_the_lines_address_delivery_totals_and_the_guests_signed_link(goods):
    order = place(goods)
    pay(order)
    (message,) = sent("confirmed")
    assert message.to == ["ada@example.com"]
    assert message.subject == f"{SHOP}: order {order.number} confirmed"
    for body in (message.body, html_of(message)):
        assert "Copper Kettle" in body
        assert "Stone Mug" in body
        assert "€30.00" in body
        assert "€16.00" in body, "each line's price (2 mugs at 8.00)"
        assert "Express delivery" in body
        assert "€9.90" in body
        assert "€55.90" in body, "the total"
        assert "including €9.32 VAT" in body, "20 % VAT included in 55.90"
        assert "12 St James" in body
        assert "Flat 3" in body
        assert "SW1Y 4JH" in body
        assert "London" in body
    assert "1 x Copper Kettle" in message.body
    assert "2 x Stone Mug" in message.body
    link = link_in(message.body)
    assert link == f"/orders/{order.number}/?t={order.link_token}", "a guest's link carries the signed token"
    assert link_in(html_of(message)) == link
    assert order.access_token not in message.body + html_of(message), "the order's own secret is never sent"
    assert "Open your order" not in message.body
    assert Client().get(link).status_code == 200, "the link opens the order"

    redeliver_all("orders.order.paid.v1", "orders.send_order_confirmation")
    assert len(sent("confirmed")) == 1, "one confirmation however often the event comes"


def test_a_customers_link_asks_them_to_sign_in(goods):
    ada = UserFactory(email="ada@example.com")
    order = place(goods, user_id=ada.pk)
    pay(order)
    (message,) = sent("confirmed")
    link = link_in(message.body)
    assert link == f"/orders/{order.number}/", "no token: the customer signs in"
    assert "sign in with ada@example.com" in message.body
    assert Client().get(link)["Location"] == f"/account/login/?next=/orders/{order.number}/"
    client = Client()
    client.force_login(ada)
    assert order.number in client.get(link).content.decode()


def test_payment_failed_says_why_and_links_to_pay_again_once_per_attempt(goods):
    order = place(goods)
    pay(order, "4000000000000002")
    (message,) = sent("did not go through")
    assert message.subject == f"{SHOP}: the payment for order {order.number} did not go through"
    assert "Your card was declined" in message.body
    assert "Your card was declined" in html_of(message)
    assert "Nothing was charged" in message.body
    assert f"Pay again: https://shop.example.com/orders/{order.number}/?t={order.link_token}" in message.body
    page = Client().get(link_in(message.body)).content.decode()
    assert "Pay again" in page, "the link leads to the order's Pay again form"
    redeliver_all("orders.order.payment_failed.v1", "orders.send_payment_failed_email")
    assert len(sent("did not go through")) == 1, "once for this attempt"

    client = Client()
    response = client.post(f"/checkout/pay-again/{order.number}/", {"attempt": 2, "t": order.link_token})
    assert response.status_code == 302, "pay again accepts the signed token"
    back = pay_on_gateway(client, response["Location"], "4000000000009995")
    assert f"?t={order.link_token}" in back, "the gateway sends the guest back with the signed token"
    failures = sent("did not go through")
    assert len(failures) == 2, "a second attempt that fails is a second fact"
    assert "insufficient" in failures[1].body.lower() or "funds" in failures[1].body.lower()
    assert OrderEmail.objects.filter(kind="payment_failed").count() == 2


def test_cancelled_tells_what_happens_to_the_money(goods):
    unpaid = place(goods, key="unpaid")
    services.order_cancel(number=unpaid.number, actor="guest")
    (message,) = sent(f"order {unpaid.number} is cancelled")
    assert "You cancelled it" in message.body
    assert "Your money: nothing was charged." in message.body

    paid = place(goods, key="paid")
    pay(paid)
    services.order_cancel(number=paid.number, actor="staff:1")
    (message,) = sent(f"order {paid.number} is cancelled")
    assert "We had to cancel it" in message.body
    assert "nothing is charged. The amount held on your card is released" in message.body
    assert "amount held on your card is released" in html_of(message)
    assert payment_get(payment_id=services.order_find(number=paid.number).payment_id).status == "voided"

    redeliver_all("orders.order.cancelled.v1", "orders.send_cancellation_email")
    assert len(sent("is cancelled")) == 2, "once per order"


def test_an_unpaid_order_that_expires_is_cancelled_with_a_reason(goods):
    order = place(goods)
    Order.objects.filter(number=order.number).update(created_at=timezone.now() - timedelta(hours=1))
    assert services.orders_expire_unpaid() == 1
    (message,) = sent("is cancelled")
    assert "It was not paid in time" in message.body


def delivered(goods) -> services.OrderInfo:
    order = place(goods, user_id=7)
    pay(order)
    services.order_ship(number=order.number, actor="staff:1", carrier="dhl", tracking_number="JD0001")
    services.order_deliver(number=order.number, actor="carrier")
    return services.order_find(number=order.number)


def test_shipped_has_the_tracking_and_the_order_link(goods):
    order = delivered(goods)
    (message,) = sent("on its way")
    assert "Tracking number: JD0001" in message.body
    assert "https://www.dhl.com/en/express/tracking.html?AWB=JD0001" in message.body
    assert "AWB=JD0001" in html_of(message)
    assert link_in(message.body) == f"/orders/{order.number}/"
    assert "12 St James" in message.body


def test_refunds_are_told_once_each_with_the_amount_partial_full_and_for_a_return(goods):
    order = delivered(goods)
    kettle_line = next(line.id for line in order.lines if line.name == "Copper Kettle")
    ret = services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="damaged",
                                  actor="customer:7", user_id=7)  # fmt: skip
    services.return_receive(number=order.number, ret=ret.number, restock={kettle_line: False}, actor="staff:1")
    services.return_refund(number=order.number, ret=ret.number, actor="staff:1")
    (first,) = sent("a refund")
    assert first.subject == f"{SHOP}: a refund for order {order.number}"
    assert "We are refunding €30.00" in first.body
    assert f"the refund for your return {ret.number} of order {order.number}" in first.body
    assert "1 x Copper Kettle" in first.body
    assert "Refunded in all: €30.00 of €55.90" in first.body

    services.order_refund_amount(number=order.number, amount=Decimal("5.00"), actor="staff:1")
    second = sent("a refund")[1]
    assert "We are refunding €5.00" in second.body
    assert "partial refund" in second.body
    assert "Refunded in all: €35.00 of €55.90" in second.body

    services.order_refund(number=order.number, actor="staff:1")
    third = sent("a refund")[2]
    assert "We are refunding €20.90" in third.body, "what was left"
    assert "refunded in full" in third.body
    assert "(all of it)" in third.body
    assert "refunded in full" in html_of(third)
    assert payment_get(payment_id=order.payment_id).amount_refunded == Decimal("55.90")

    redeliver_all("orders.order.refund_issued.v1", "orders.send_refund_email")
    assert len(sent("a refund")) == 3, "one email per refund, however often each event comes"


def test_a_mail_server_that_refuses_undoes_the_claim_and_the_email_is_sent_on_the_retry(goods):
    order = place(goods)
    with mock.patch("orders.emails.send_mail", side_effect=smtplib.SMTPServerDisconnected("gone")):
        services.order_cancel(number=order.number, actor="guest")
    assert sent("is cancelled") == []
    assert not OrderEmail.objects.exists(), "the claim went with the failure"
    assert ("orders.order.cancelled.v1", "orders.send_cancellation_email") in outbox.undelivered()

    bus.sweep(now=timezone.now() + timedelta(hours=1))  # the sweep (beat) tries the delivery again
    assert len(sent("is cancelled")) == 1
    assert OrderEmail.objects.filter(kind="cancelled").count() == 1
    bus.sweep(now=timezone.now() + timedelta(hours=3))
    assert len(sent("is cancelled")) == 1


def test_no_email_goes_to_an_anonymised_order(goods):
    order = place(goods, user_id=7)
    services.orders_anonymise_customer(user_id=7)
    services.order_cancel(number=order.number, actor="system")
    assert mail.outbox == []


# ---------------------------------------------------------------- the signed guest link


def test_the_signed_link_opens_its_order_only(goods):
    one, two = place(goods, key="one"), place(goods, key="two")
    assert one.link_token != one.access_token
    client = Client()
    assert client.get(f"/orders/{one.number}/?t={one.link_token}").status_code == 200
    tampered = one.link_token[:-1] + ("A" if one.link_token[-1] != "A" else "B")
    assert client.get(f"/orders/{one.number}/?t={tampered}").status_code == 404, "a tampered token"
    assert client.get(f"/orders/{two.number}/?t={one.link_token}").status_code == 404, "another order's number"
    assert client.get(f"/orders/{one.number}/?t={two.link_token}").status_code == 404
    assert client.get(f"/orders/{one.number}/?t={'x' * 500}").status_code == 404


def test_the_signed_link_cancels_after_the_confirmation_step_and_asks_for_a_return(goods):
    order = place(goods)
    client = Client()
    asking = client.get(f"/orders/{order.number}/cancel/?t={order.link_token}").content.decode()
    assert f"Cancel order {order.number}?" in asking
    assert "Nothing will be charged." in asking
    assert "Keep my order" in asking
    other = place(goods, key="other")
    refused = client.post(f"/orders/{order.number}/cancel/", {"t": other.link_token, "confirm": "yes"})
    assert refused.status_code == 404
    assert services.order_find(number=order.number).status == "pending_payment"
    done = client.post(f"/orders/{order.number}/cancel/", {"t": order.link_token, "confirm": "yes"})
    assert done["Location"] == f"/orders/{order.number}/?t={order.link_token}"
    assert services.order_find(number=order.number).status == "cancelled"


# ---------------------------------------------------------------- how they look


@pytest.mark.browser
def test_every_email_renders_at_desktop_and_phone_widths(goods, page, artifacts):
    """Each kind written to var/test-artifacts/email-<kind>.html and pictured at 1280 and 390 px."""
    from tests.conftest import PHONE

    declined = place(goods, key="declined")
    pay(declined, "4000000000000002")
    services.order_cancel(number=declined.number, actor=f"customer:{7}")
    order = delivered(goods)
    kettle_line = next(line.id for line in order.lines if line.name == "Copper Kettle")
    ret = services.return_request(number=order.number, lines=[(kettle_line, 1)], reason="damaged", actor="c",
                                  user_id=7)  # fmt: skip
    services.return_refund(number=order.number, ret=ret.number, actor="staff:1")
    kinds = {"payment_failed": "did not go through", "cancelled": "is cancelled", "confirmation": "confirmed",
             "shipped": "on its way", "refunded": "a refund"}  # fmt: skip
    for kind, subject in kinds.items():
        message = sent(subject)[0]
        html = html_of(message)
        (artifacts / f"email-{kind}.html").write_text(html)
        (artifacts / f"email-{kind}.txt").write_text(message.body)
        page.set_viewport_size({"width": 1280, "height": 860})
        page.set_content(html)
        page.screenshot(path=artifacts / f"email-{kind}-desktop.png", full_page=True)
        page.set_viewport_size(PHONE)
        page.set_content(html)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{kind}: no sideways scroll"
        page.screenshot(path=artifacts / f"email-{kind}-phone.png", full_page=True)
        assert page.get_by_role("link", name=re.compile("View your order|Pay again")).count() == 1


# ---------------------------------------------------------------- the customer's order pages read catalog once


def test_order_page_and_history_read_pictures_and_links_in_one_catalog_query(goods, module_queries):
    from catalog.models import Product

    kettle, mug = goods
    more = [make_product(f"Tea Towel {n}", make_category(f"Linen {n}"), variants=[{"price": "5.00"}]).variants.get()
            for n in range(3)]  # fmt: skip
    ada = UserFactory(email="ada@example.com")
    client = Client()
    client.force_login(ada)

    def statements(url: str) -> tuple[int, int, str]:
        before = dict(module_queries.statements)
        page = client.get(url).content.decode()
        after = module_queries.statements
        return after.get("catalog", 0) - before.get("catalog", 0), after["orders"] - before["orders"], page

    client.get("/orders/")  # the navigation's categories, cached from then on
    small = services.order_place(idempotency_key="small", lines=[(kettle.pk, 1)], shipping_method="standard",
                                 shipping_address=ADDRESS, email=ada.email, user_id=ada.pk)  # fmt: skip
    one_line = statements(f"/orders/{small.number}/")
    history_of_one = statements("/orders/")
    big = services.order_place(idempotency_key="big", lines=[(v.pk, 1) for v in (kettle, mug, *more)],
                               shipping_method="standard", shipping_address=ADDRESS, email=ada.email,
                               user_id=ada.pk)  # fmt: skip
    five_lines = statements(f"/orders/{big.number}/")
    history_of_two = statements("/orders/")
    assert one_line[0] == five_lines[0] == 1, "the lines' pictures and links in one catalog query, however many"
    assert history_of_one[:2] == history_of_two[:2], "the history's statements do not grow with its orders"
    assert f'href="/p/{Product.objects.get(pk=mug.product_id).slug}/?variant={mug.pk}"' in five_lines[2]
    assert "Tea Towel 2" in five_lines[2]
    assert "and 2 more" in history_of_two[2], "three pictured, the other two counted"

    Product.objects.filter(pk=mug.product_id).update(is_active=False)  # taken off sale since
    page = client.get(f"/orders/{big.number}/").content.decode()
    assert "Stone Mug" in page, "still named from the order's own snapshot"
    assert f"/p/{Product.objects.get(pk=mug.product_id).slug}/" not in page, "but no longer linked"
