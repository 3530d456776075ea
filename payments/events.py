"""Domain events of payments. They name the caller's reference; payments knows nothing of what it pays for."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from kernel.events import DomainEvent


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
