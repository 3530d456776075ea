"""What orders does when payments report, and when its own orders are paid."""

from __future__ import annotations

import contextlib

from django.conf import settings

from accounts.events import UserDeleted
from catalog.events import ReservationFailed
from kernel.bus import INLINE, subscribe
from orders import emails, services
from orders.events import OrderCancelled, OrderPaid, OrderPaymentFailed, OrderRefundIssued, ShipmentShipped
from payments.events import PaymentAuthorized, PaymentCaptured, PaymentFailed, PaymentRefunded, PaymentVoided
from payments.services import PaymentInfo, PaymentNotFound, payment_get


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
    emails.send(
        number=event.number, template="confirmation", subject=f"order {event.number} confirmed",
        claim=lambda: services.order_confirmation_claim(number=event.number),  # sent already: no order read
    )  # fmt: skip


@subscribe(OrderPaymentFailed, idempotent=True, queue="email")
def send_payment_failed_email(event: OrderPaymentFailed) -> None:
    """Why the payment failed and how to pay again (the order's page), once per attempt."""
    emails.send(
        number=event.number, template="payment_failed",
        subject=f"the payment for order {event.number} did not go through",
        claimed=lambda order: order.payment_failed and order.payment_attempt == event.attempt
        and emails.claim(order_id=order.id, kind=emails.Kind.PAYMENT_FAILED, key=str(event.attempt)),
        context=lambda order: {"reason": event.message, "held_until": emails.held_until(order)},
    )  # fmt: skip


@subscribe(OrderCancelled, idempotent=True, queue="email")
def send_cancellation_email(event: OrderCancelled) -> None:
    """The order is cancelled, why, and what happens to the money: once per order."""
    emails.send(
        number=event.number, template="cancelled", subject=f"order {event.number} is cancelled", history=True,
        claimed=lambda order: emails.claim(order_id=order.id, kind=emails.Kind.CANCELLED, key=""),
        context=lambda order: {"reason": event.reason, "payment": _payment(order), "by": _cancelled_by(order)},
    )  # fmt: skip


@subscribe(OrderRefundIssued, idempotent=True, queue="email")
def send_refund_email(event: OrderRefundIssued) -> None:
    """How much goes back, whether that is all of it, and for which return: once per refund (its running total
    names it)."""
    emails.send(
        number=event.number, template="refunded", subject=f"a refund for order {event.number}",
        claimed=lambda order: emails.claim(order_id=order.id, kind=emails.Kind.REFUNDED, key=str(event.total_refunded)),
        context=lambda order: {
            "amount": event.amount, "total_refunded": event.total_refunded, "full": event.total_refunded >= order.total,
            "ret": next((r for r in order.returns if r.number == event.ret), None) if event.ret else None,
        },
    )  # fmt: skip


def _payment(order: services.OrderInfo) -> PaymentInfo | None:
    try:
        return payment_get(payment_id=order.payment_id) if order.payment_id else None
    except PaymentNotFound:
        return None


def _cancelled_by(order: services.OrderInfo) -> str:
    """Who cancelled: "customer", "shop" (staff) or "system" (unpaid in time)."""
    change = next((h for h in reversed(order.history) if h.to_status == services.OrderStatus.CANCELLED), None)
    actor = change.actor if change else "system"
    if actor.startswith(("customer", "guest")):
        return "customer"
    return "system" if actor == "system" else "shop"


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
    emails.send(
        number=event.number, template="shipped", subject=f"order {event.number} is on its way",
        claimed=lambda order: services.shipment_claim_email(number=order.number, shipment=event.shipment),
        context=lambda order: {"parcel": next(s for s in order.shipments if s.number == event.shipment)},
    )  # fmt: skip


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
