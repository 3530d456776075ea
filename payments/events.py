"""Domain events of payments. They name the caller's reference; payments knows nothing of what it pays for."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from kernel.events import Command, DomainEvent


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorized(DomainEvent):
    name: ClassVar[str] = "payments.payment.authorized.v1"
    payment_id: int
    reference: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(DomainEvent):
    name: ClassVar[str] = "payments.payment.failed.v1"
    payment_id: int
    reference: str
    code: str
    message: str  # for the customer


@dataclass(frozen=True, kw_only=True)
class PaymentCaptured(DomainEvent):
    name: ClassVar[str] = "payments.payment.captured.v1"
    payment_id: int
    reference: str
    amount: Decimal
    total_captured: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class PaymentVoided(DomainEvent):
    name: ClassVar[str] = "payments.payment.voided.v1"
    payment_id: int
    reference: str


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(DomainEvent):
    name: ClassVar[str] = "payments.payment.refunded.v1"
    payment_id: int
    reference: str
    amount: Decimal
    total_refunded: Decimal
    currency: str


# ---------------------------------------------------------------- commands: what other modules ask payments to do
# Sent through the sender's outbox, so a request exists if and only if the sender's change committed; payments
# applies each on a worker. Every operation is idempotent by its key, so a command delivered twice charges once.


@dataclass(frozen=True, kw_only=True)
class CapturePayment(Command):
    """Capture `amount` of the authorisation (None: all that is left). Answered by PaymentCaptured."""

    name: ClassVar[str] = "payments.payment.capture.v1"
    payment_id: int
    idempotency_key: str
    amount: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class CancelPayment(Command):
    """Give the customer's money back: void what is only authorised, refund what was captured."""

    name: ClassVar[str] = "payments.payment.cancel.v1"
    payment_id: int
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class RefundPayment(Command):
    """Refund `amount` of what was captured (None: all of it). Answered by PaymentRefunded."""

    name: ClassVar[str] = "payments.payment.refund.v1"
    payment_id: int
    idempotency_key: str
    amount: Decimal | None = None
