"""Public face of payments. It knows nothing about orders: it is asked to authorise an amount for a reference and
reports what happened as events (payments.payment.authorized.v1, failed, captured, voided, refunded).

Every operation carries an idempotency key, unique in the database: the same key returns the first result and
never charges twice; the same key with different values is refused. Operations are written before the gateway
is called (no database lock is held while talking to it) and completed after, so two concurrent captures capture
once and refunds can never exceed what was captured (the database checks that too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError
from django.db.models import Q, Sum
from django.utils import timezone

from kernel.bus import publish
from kernel.db import atomic, unique_by
from kernel.money import minor_units, round_money
from payments.events import PaymentAuthorized, PaymentCaptured, PaymentFailed, PaymentRefunded, PaymentVoided
from payments.gateways import (
    GatewayStatus,
    GatewayTimeout,
    GatewayUnavailable,
    InvalidNotification,
    get_gateway,
)
from payments.models import GatewayNotification, Payment, Transaction

logger = logging.getLogger(__name__)

CUSTOMER_MESSAGES = {
    "card_declined": "Your card was declined. Please try another card, or ask your bank why.",
    "insufficient_funds": "Your card has insufficient funds. Please try another card.",
    "expired_card": "Your card has expired. Please use another card.",
    "incorrect_cvc": "The security code (CVC) is not right. Please check it and try again.",
    "processing_error": "Your bank could not process the payment. Please try again in a few minutes.",
    "gateway_unavailable": "We could not reach the payment service. Nothing was charged; please try again shortly.",
    "cancelled": "The payment was cancelled. Nothing was charged.",
}
PENDING_MESSAGE = "We are waiting for your bank to confirm the payment. This page updates as soon as it does."
Status = Payment.Status
PaymentStatus = Payment.Status  # public: pending, authorized, captured, refunded, voided, failed


class PaymentError(Exception):
    """Base of the exceptions payments raises."""


class PaymentNotFound(PaymentError):
    pass


class IdempotencyConflict(PaymentError):
    """This idempotency key was used already for a different operation or amount."""


class OperationNotAllowed(PaymentError):
    """The payment is not in a state that allows this (capturing a failed payment, voiding a captured one...)."""


class RefundExceedsCaptured(OperationNotAllowed):
    pass


class UnknownPayment(PaymentError):
    """A gateway notification about a payment this shop does not know."""


class InvalidAmount(PaymentError, ValueError):
    pass


GATEWAY_LABELS = {"test": "Card, through the test gateway", "stripe": "Card, through Stripe"}


@dataclass(frozen=True)
class PaymentInfo:
    id: int
    reference: str
    amount: Decimal
    currency: str
    status: str
    amount_authorized: Decimal
    amount_captured: Decimal
    amount_refunded: Decimal
    redirect_url: str
    failure_code: str
    gateway: str = ""

    @property
    def method_label(self) -> str:
        """How the customer paid, for their order page and emails ("Card, through Stripe")."""
        return GATEWAY_LABELS.get(self.gateway, f"Card, through {self.gateway}" if self.gateway else "Card")

    @property
    def customer_message(self) -> str:
        if self.status == Status.FAILED:
            return CUSTOMER_MESSAGES.get(self.failure_code, CUSTOMER_MESSAGES["card_declined"])
        if self.status == Status.PENDING:
            return PENDING_MESSAGE
        return ""


def _info(p: Payment) -> PaymentInfo:
    return PaymentInfo(
        p.pk,
        p.reference,
        p.amount,
        p.currency,
        p.status,
        p.amount_authorized,
        p.amount_captured,
        p.amount_refunded,
        p.redirect_url,
        p.failure_code,
        p.gateway,
    )


# The amount columns hold two decimal places, so a currency with a finer minor unit (BHD, KWD...) cannot be stored.
_STORED_DECIMAL_PLACES = 2


def _money(amount: Decimal | str | int, currency: str) -> tuple[Decimal, str]:
    """The amount validated and rounded by kernel.money (half-up, to the currency's minor unit)."""
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise InvalidAmount(f"{currency!r} is not a currency code")
    currency = currency.upper()
    if minor_units(currency) > _STORED_DECIMAL_PLACES:
        raise InvalidAmount(f"payments in {currency} are not supported (its minor unit is too fine)")
    try:
        value = round_money(amount, currency)
    except (TypeError, ValueError):
        raise InvalidAmount(f"{amount!r} is not an amount") from None
    if value <= 0:
        raise InvalidAmount("the amount must be more than zero")
    return value, currency


def payment_get(*, payment_id: int) -> PaymentInfo:
    payment = unique_by(Payment, pk=payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return _info(payment)


def payments_get(*, payment_ids: Iterable[int]) -> dict[int, PaymentInfo]:
    """Several payments by id, in one query (none for no ids): {id: payment}, without the ids that name none."""
    ids = set(payment_ids)
    if not ids:
        return {}
    return {payment.pk: _info(payment) for payment in Payment.objects.filter(pk__in=ids)}


# ---------------------------------------------------------------- authorise


def payment_authorize(
    *,
    reference: str,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
    return_url: str,
    notify_url: str,
    gateway: str | None = None,
) -> PaymentInfo:
    """Start a payment: returns it with redirect_url, the gateway's page where the customer pays.

    The outcome arrives later (notification, return from the gateway, or the periodic status check) and is
    published as payments.payment.authorized.v1 or failed.v1. A repeated call with the same key returns the same
    payment and never starts a second one; the same key with a different amount raises IdempotencyConflict.
    """
    amount, currency = _money(amount, currency)
    chosen = get_gateway(gateway)
    try:
        with atomic(module="payments"):
            payment = Payment.objects.create(
                reference=reference,
                amount=amount,
                currency=currency,
                gateway=chosen.name,
                idempotency_key=idempotency_key,
                return_url=return_url,
            )
            Transaction.objects.create(
                payment=payment,
                kind=Transaction.Kind.AUTHORIZE,
                amount=amount,
                currency=currency,
                idempotency_key=f"{idempotency_key}:authorize",
            )
    except IntegrityError:
        existing = unique_by(Payment, idempotency_key=idempotency_key)
        if existing is None:
            raise
        if (existing.reference, existing.amount, existing.currency) != (reference, amount, currency):
            raise IdempotencyConflict(idempotency_key) from None
        return _info(_started(existing))

    try:  # no database lock is held while the gateway is talking
        started = chosen.start(
            amount=amount,
            currency=currency,
            reference=reference,
            idempotency_key=idempotency_key,
            return_url=return_url,
            notify_url=notify_url,
        )
    except (GatewayTimeout, GatewayUnavailable) as exc:
        logger.warning("payment %s could not start at %s: %s", payment.pk, chosen.name, exc)
        with atomic(module="payments"):
            _fail(Payment.objects.select_for_update().get(pk=payment.pk), "gateway_unavailable")
        return payment_get(payment_id=payment.pk)
    payment.redirect_url, payment.gateway_reference = started.redirect_url, started.gateway_reference
    Payment.objects.filter(pk=payment.pk).update(
        redirect_url=started.redirect_url, gateway_reference=started.gateway_reference
    )
    return _info(payment)


START_WAIT_SECONDS = 15.0  # longer than a gateway's answer to "start a payment" takes (its timeout is 10 s)


def _started(payment: Payment) -> Payment:
    """The same payment asked for again while the first request is still talking to the gateway (a double
    click): wait until that request has saved where the customer pays, or failed, so that this one too sends the
    customer to the gateway's page, not to a return page that waits for a payment nobody can make."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    while payment.status == Status.PENDING and not payment.gateway_reference and time.monotonic() < deadline:
        time.sleep(0.05)
        payment = Payment.objects.get(pk=payment.pk)
    return payment


def _fail(payment: Payment, code: str) -> None:
    payment.status = Status.FAILED
    payment.failure_code = code or "card_declined"
    payment.save(update_fields=["status", "failure_code", "updated_at"])
    payment.transactions.filter(kind=Transaction.Kind.AUTHORIZE, result=Transaction.Result.PENDING).update(
        result=Transaction.Result.FAILURE, error_code=payment.failure_code, completed_at=timezone.now()
    )
    message = CUSTOMER_MESSAGES.get(payment.failure_code, CUSTOMER_MESSAGES["card_declined"])
    publish(
        PaymentFailed(payment_id=payment.pk, reference=payment.reference, code=payment.failure_code, message=message)
    )


def _apply(payment: Payment, status: GatewayStatus) -> None:
    """Move a (locked) payment forward to what the gateway says. Never backwards: a late or replayed report of an
    earlier state changes nothing, so notifications may come twice and in any order."""
    if status.alias and status.alias != payment.gateway_reference and not payment.gateway_alias:
        payment.gateway_alias = status.alias
        payment.save(update_fields=["gateway_alias", "updated_at"])
    if payment.status in (Status.FAILED, Status.VOIDED):
        return
    if status.state == "failed":
        if payment.status == Status.PENDING:
            _fail(payment, status.error_code)
        return
    if status.state in ("authorized", "captured", "refunded") and payment.status == Status.PENDING:
        payment.status = Status.AUTHORIZED
        payment.amount_authorized = min(status.amount_authorized or payment.amount, payment.amount)
        payment.save(update_fields=["status", "amount_authorized", "updated_at"])
        payment.transactions.filter(kind=Transaction.Kind.AUTHORIZE, result=Transaction.Result.PENDING).update(
            result=Transaction.Result.SUCCESS, completed_at=timezone.now()
        )
        publish(
            PaymentAuthorized(
                payment_id=payment.pk, reference=payment.reference, amount=payment.amount_authorized,
                currency=payment.currency,
            )
        )  # fmt: skip
    if status.state == "voided" and payment.status == Status.AUTHORIZED and not payment.amount_captured:
        payment.status = Status.VOIDED
        payment.save(update_fields=["status", "updated_at"])
        publish(PaymentVoided(payment_id=payment.pk, reference=payment.reference))
    if status.amount_captured > payment.amount_captured and payment.status in (Status.AUTHORIZED, Status.CAPTURED):
        added = min(status.amount_captured, payment.amount_authorized) - payment.amount_captured
        if added > 0:
            _record_capture(payment, added)
    if status.amount_refunded > payment.amount_refunded and payment.status in (Status.CAPTURED, Status.REFUNDED):
        added = min(status.amount_refunded, payment.amount_captured) - payment.amount_refunded
        if added > 0:
            _record_refund(payment, added)


def _record_capture(payment: Payment, amount: Decimal) -> None:
    payment.amount_captured += amount
    payment.status = Status.CAPTURED
    payment.save(update_fields=["amount_captured", "status", "updated_at"])
    publish(
        PaymentCaptured(
            payment_id=payment.pk, reference=payment.reference, amount=amount,
            total_captured=payment.amount_captured, currency=payment.currency,
        )
    )  # fmt: skip


def _record_refund(payment: Payment, amount: Decimal) -> None:
    payment.amount_refunded += amount
    if payment.amount_refunded == payment.amount_captured:
        payment.status = Status.REFUNDED
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    publish(
        PaymentRefunded(
            payment_id=payment.pk, reference=payment.reference, amount=amount,
            total_refunded=payment.amount_refunded, currency=payment.currency,
        )
    )  # fmt: skip


def payment_refresh(*, payment_id: int) -> PaymentInfo:
    """Ask the gateway how a pending payment stands and apply it (on return from the gateway, and by the periodic
    task). A gateway that times out leaves the payment as it was."""
    payment = unique_by(Payment, pk=payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    if payment.gateway_reference and payment.status == Status.PENDING:
        try:
            status = get_gateway(payment.gateway).fetch_status(gateway_reference=payment.gateway_reference)
        except (GatewayTimeout, GatewayUnavailable) as exc:
            logger.warning("status of payment %s unknown for now: %s", payment_id, exc)
        else:
            if status.state != "pending" or (status.alias and not payment.gateway_alias):
                with atomic(module="payments"):
                    payment = Payment.objects.select_for_update().get(pk=payment_id)
                    _apply(payment, status)
    return _info(payment)


# ---------------------------------------------------------------- capture, void, refund


def _begin(payment_id: int, kind: str, amount: Decimal | None, idempotency_key: str) -> tuple[Transaction, bool]:
    """Write the operation before calling the gateway. Returns (transaction, is_new)."""
    with atomic(module="payments"):
        payment = unique_by(Payment, pk=payment_id, for_update=True)
        if payment is None:
            raise PaymentNotFound(payment_id)
        if amount is not None:
            amount, _ = _money(amount, payment.currency)
        existing = unique_by(Transaction, idempotency_key=idempotency_key)
        if existing is not None:
            if (
                existing.payment_id != payment_id
                or existing.kind != kind
                or (amount is not None and existing.amount != amount)
            ):
                raise IdempotencyConflict(idempotency_key)
            return existing, False
        in_flight = Transaction.objects.filter(payment=payment, kind=kind, result=Transaction.Result.PENDING)
        pending = in_flight.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        if kind == Transaction.Kind.CAPTURE:
            if payment.status not in (Status.AUTHORIZED, Status.CAPTURED):
                raise OperationNotAllowed(f"a {payment.status} payment cannot be captured")
            room = payment.amount_authorized - payment.amount_captured - pending
            amount = room if amount is None else amount
            if amount <= 0 or amount > room:
                raise OperationNotAllowed(f"only {room} {payment.currency} can still be captured")
        elif kind == Transaction.Kind.REFUND:
            room = payment.amount_captured - payment.amount_refunded - pending
            amount = room if amount is None else amount
            if amount <= 0 or amount > room:
                raise RefundExceedsCaptured(f"only {room} {payment.currency} can still be refunded")
        else:  # void
            if payment.status != Status.AUTHORIZED or payment.amount_captured or in_flight.exists():
                raise OperationNotAllowed(f"a {payment.status} payment cannot be voided")
            amount = Decimal(0)
        try:
            with atomic(module="payments"):
                created = Transaction.objects.create(
                    payment=payment, kind=kind, amount=amount, currency=payment.currency,
                    idempotency_key=idempotency_key,
                )  # fmt: skip
        except IntegrityError:  # the same key, at the same moment, from another process
            raise IdempotencyConflict(idempotency_key) from None
    return created, True


def _perform(txn: Transaction) -> None:
    """Ask the gateway (outside any lock) and record the answer. A timeout leaves the operation pending."""
    payment = Payment.objects.get(pk=txn.payment_id)
    gateway = get_gateway(payment.gateway)
    target = payment.gateway_alias or payment.gateway_reference
    try:
        if txn.kind == Transaction.Kind.CAPTURE:
            result = gateway.capture(
                gateway_reference=target, amount=txn.amount, currency=txn.currency, idempotency_key=txn.idempotency_key
            )
        elif txn.kind == Transaction.Kind.REFUND:
            result = gateway.refund(
                gateway_reference=target, amount=txn.amount, currency=txn.currency, idempotency_key=txn.idempotency_key
            )
        else:
            result = gateway.void(gateway_reference=target, idempotency_key=txn.idempotency_key)
    except GatewayTimeout as exc:
        logger.warning("%s of payment %s timed out; it stays pending: %s", txn.kind, payment.pk, exc)
        return
    except GatewayUnavailable as exc:
        result_code, success = "gateway_unavailable", False
        logger.warning("%s of payment %s refused: %s", txn.kind, payment.pk, exc)
    else:
        result_code, success = result.error_code, result.success
    with atomic(module="payments"):
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        current = Transaction.objects.select_for_update().get(pk=txn.pk)
        if current.result != Transaction.Result.PENDING:
            return  # someone else completed it meanwhile
        current.result = Transaction.Result.SUCCESS if success else Transaction.Result.FAILURE
        current.error_code = result_code
        current.completed_at = timezone.now()
        current.save(update_fields=["result", "error_code", "completed_at"])
        if not success:
            return
        if txn.kind == Transaction.Kind.CAPTURE:
            _record_capture(locked, txn.amount)
        elif txn.kind == Transaction.Kind.REFUND:
            _record_refund(locked, txn.amount)
        else:
            _apply(locked, GatewayStatus("voided"))


def _operate(payment_id: int, kind: str, amount: Decimal | None, idempotency_key: str) -> PaymentInfo:
    txn, new = _begin(payment_id, kind, amount, idempotency_key)
    if new:
        _perform(txn)
    return payment_get(payment_id=payment_id)


def payment_capture(*, payment_id: int, idempotency_key: str, amount: Decimal | None = None) -> PaymentInfo:
    """Capture all that is left of the authorisation, or `amount` of it. Raises OperationNotAllowed."""
    return _operate(payment_id, Transaction.Kind.CAPTURE, amount, idempotency_key)


def payment_void(*, payment_id: int, idempotency_key: str) -> PaymentInfo:
    """Release an authorisation nothing was captured from."""
    return _operate(payment_id, Transaction.Kind.VOID, None, idempotency_key)


def payment_cancel(*, payment_id: int, idempotency_key: str) -> PaymentInfo:
    """Give the customer's money back, whatever has happened so far: void an authorisation nothing was captured
    from, refund what was captured. A failed, voided or fully refunded payment is left as it is. Idempotent."""
    payment = payment_get(payment_id=payment_id)
    if payment.amount_captured > payment.amount_refunded:
        return payment_refund(payment_id=payment_id, idempotency_key=f"{idempotency_key}:refund")
    if payment.status == Status.AUTHORIZED:
        return payment_void(payment_id=payment_id, idempotency_key=f"{idempotency_key}:void")
    return payment


def payment_refund(*, payment_id: int, idempotency_key: str, amount: Decimal | None = None) -> PaymentInfo:
    """Refund all that is captured and not yet refunded, or `amount` of it. Raises RefundExceedsCaptured."""
    return _operate(payment_id, Transaction.Kind.REFUND, amount, idempotency_key)


# ---------------------------------------------------------------- notifications and the periodic check


def notification_receive(*, gateway: str, body: bytes, headers: dict[str, str]) -> str:
    """Verify and apply a gateway notification. Returns "applied" or "duplicate".

    Raises InvalidNotification (unsigned, tampered, stale, malformed) or UnknownPayment. Applied once per gateway
    event id: the record of the event and its effect commit together.
    """
    notice = get_gateway(gateway).parse_notification(body=body, headers=headers)
    with atomic(module="payments"):
        payment = (
            Payment.objects.select_for_update()
            .filter(Q(gateway_reference=notice.gateway_reference) | Q(gateway_alias=notice.gateway_reference))
            .filter(gateway=gateway)
            .first()
        )
        if payment is None and notice.merchant_reference:
            payment = (
                Payment.objects.select_for_update()
                .filter(gateway=gateway, reference=notice.merchant_reference)
                .order_by("-created_at")
                .first()
            )
        if payment is None:
            raise UnknownPayment(notice.gateway_reference)
        try:
            with atomic(module="payments"):
                GatewayNotification.objects.create(
                    gateway=gateway, event_id=notice.event_id, event_type=notice.event_type, payload=notice.payload
                )
        except IntegrityError:
            return "duplicate"
        if notice.status.state != "pending":
            _apply(payment, notice.status)
    if notice.status.state == "pending":  # the notification only says "something happened": ask
        payment_refresh(payment_id=payment.pk)
    return "applied"


def payments_resolve_pending(*, older_than: timedelta = timedelta(seconds=60), limit: int = 200) -> int:
    """Ask the gateway about payments still pending, and finish operations a timeout left pending. Idempotent:
    operations are retried with their own key, which the gateway answers once."""
    cutoff = timezone.now() - older_than
    count = 0
    stale = Payment.objects.filter(status=Status.PENDING, created_at__lt=cutoff).exclude(gateway_reference="")
    for payment_id in stale.values_list("pk", flat=True)[:limit]:
        payment_refresh(payment_id=payment_id)
        count += 1
    hanging = Transaction.objects.filter(result=Transaction.Result.PENDING, created_at__lt=cutoff).exclude(
        kind=Transaction.Kind.AUTHORIZE
    )
    for txn in hanging.select_related("payment")[:limit]:
        _perform(txn)
        count += 1
    return count


__all__ = [
    "CUSTOMER_MESSAGES",
    "GatewayUnavailable",
    "IdempotencyConflict",
    "InvalidAmount",
    "InvalidNotification",
    "OperationNotAllowed",
    "PaymentError",
    "PaymentInfo",
    "PaymentNotFound",
    "PaymentStatus",
    "RefundExceedsCaptured",
    "UnknownPayment",
    "notification_receive",
    "payment_authorize",
    "payment_cancel",
    "payment_capture",
    "payment_get",
    "payment_refresh",
    "payment_refund",
    "payment_void",
    "payments_get",
    "payments_resolve_pending",
]
