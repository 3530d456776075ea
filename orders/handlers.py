"""What orders does when payments report, and when its own orders are paid."""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.events import UserDeleted
from catalog.events import ReservationFailed
from kernel.bus import INLINE, subscribe
from kernel.db import atomic
from orders import services
from orders.events import OrderPaid, ShipmentShipped
from payments.events import PaymentAuthorized, PaymentCaptured, PaymentFailed, PaymentRefunded, PaymentVoided


# Inline: the order turns paid (or records the failure) in the process that learned the payment's outcome, right
# after that commit, so the customer coming back from the gateway sees the confirmation (or "Pay again") at once.
# The outbox and its sweep still guarantee delivery if this fails; the email goes to a worker. Both are idempotent
# by the order's own state (under a row lock, only a pending order moves; a failure is recorded once per attempt),
# so the bus keeps no record of them. So is the email: the
# claim on the order's confirmation_sent_at lets one delivery send it.
@subscribe(PaymentAuthorized, mode=INLINE, idempotent=True)
def mark_order_paid(event: PaymentAuthorized) -> None:
    with contextlib.suppress(services.OrderNotFound):  # a payment for something other than an order
        services.order_mark_paid(number=event.reference, payment_id=event.payment_id)


# The consumer keeps its first name (a key in the outbox's deliveries), though it no longer cancels: a failed payment
# leaves the order awaiting payment, the customer may pay again, and the reservation's expiry ends it otherwise.
@subscribe(PaymentFailed, mode=INLINE, idempotent=True, key="orders.cancel_unpaid_order")
def note_payment_failure(event: PaymentFailed) -> None:
    services.order_payment_failed(number=event.reference, message=event.message, payment_id=event.payment_id)


@subscribe(ReservationFailed, mode=INLINE, idempotent=True)
def cancel_sold_out_order(event: ReservationFailed) -> None:
    """The saga's compensation: the paid order's stock was gone. Cancel it and give the money back, once. Inline,
    right after catalog's answer, so the order is cancelled before its confirmation email is claimed."""
    with contextlib.suppress(services.OrderNotFound):
        services.order_stock_lost(number=event.reference)


@subscribe(UserDeleted, idempotent=True)
def anonymise_orders(event: UserDeleted) -> None:
    services.orders_anonymise_customer(user_id=event.user_id)


@subscribe(OrderPaid, idempotent=True, queue="email")
def send_order_confirmation(event: OrderPaid) -> None:
    """Runs on a worker after the order is paid; sends the confirmation once per order. The claim and the sending
    share a transaction: if the mail server refuses, the claim is undone and the delivery is tried again."""
    with atomic(module="orders"):
        if not services.order_confirmation_claim(number=event.number):
            return
        order = services.order_find(number=event.number, history=False)
        context = {"order": order, "shop_name": settings.SHOP_NAME}
        send_mail(
            subject=f"{settings.SHOP_NAME}: order {order.number} confirmed",
            message=render_to_string("orders/email/confirmation.txt", context),
            html_message=render_to_string("orders/email/confirmation.html", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[order.email],
        )


def fulfil_automatically(event: OrderPaid) -> None:
    """ORDERS_AUTO_FULFIL: a worker packs and ships the paid order (one parcel, a generated tracking number)."""
    services.orders_auto_fulfil(number=event.number)


# Subscribed only when the shop asks for it: otherwise every paid order would carry a delivery for nothing.
if settings.ORDERS_AUTO_FULFIL:
    subscribe(OrderPaid, idempotent=True, key="orders.fulfil_automatically", queue="fulfilment")(fulfil_automatically)


@subscribe(ShipmentShipped, idempotent=True, queue="email")
def send_shipment_email(event: ShipmentShipped) -> None:
    """The customer hears that a parcel is on its way, with its tracking link: once per parcel (claimed and sent in
    one transaction)."""
    with atomic(module="orders"):
        if not services.shipment_claim_email(number=event.number, shipment=event.shipment):
            return
        order = services.order_find(number=event.number, history=False)
        parcel = next(s for s in order.shipments if s.number == event.shipment)
        context = {"order": order, "parcel": parcel, "shop_name": settings.SHOP_NAME}
        send_mail(
            subject=f"{settings.SHOP_NAME}: order {order.number} is on its way",
            message=render_to_string("orders/email/shipped.txt", context),
            html_message=render_to_string("orders/email/shipped.html", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[order.email],
        )


@subscribe(PaymentRefunded, idempotent=True)
def count_refund(event: PaymentRefunded) -> None:
    """A refund made in payments (its admin, a refund command) shows on the order, and a full one refunds it."""
    services.order_payment_refunded(number=event.reference, total_refunded=event.total_refunded,
                                    currency=event.currency)  # fmt: skip


@subscribe(PaymentCaptured, idempotent=True)
@subscribe(PaymentVoided, idempotent=True)
def note_payment_change(event: PaymentCaptured | PaymentVoided) -> None:
    """A capture or a void changes what the order's API answer shows of its payment: its updated_at moves."""
    services.order_payment_changed(number=event.reference)
