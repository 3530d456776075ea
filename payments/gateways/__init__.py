"""Payment gateways: one interface, a built-in test gateway and a Stripe adapter.

The store never sees card numbers: start() returns the address of the gateway's hosted payment page, the customer
pays there and comes back; the gateway also tells the store what happened with a signed notification.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from django.conf import settings


class GatewayTimeout(Exception):
    """The gateway did not answer in time: the outcome is unknown and must be asked for later."""


class GatewayUnavailable(Exception):
    """The gateway refused or failed the request outright."""


class InvalidNotification(Exception):
    """A notification that is unsigned, badly signed, stale or malformed."""


@dataclass(frozen=True)
class StartResult:
    redirect_url: str
    gateway_reference: str


@dataclass(frozen=True)
class OperationResult:
    success: bool
    gateway_reference: str = ""
    error_code: str = ""


@dataclass(frozen=True)
class GatewayStatus:
    """What the gateway says about a payment now."""

    state: str  # pending, authorized, captured, voided, failed, refunded
    amount_authorized: Decimal = Decimal(0)
    amount_captured: Decimal = Decimal(0)
    amount_refunded: Decimal = Decimal(0)
    error_code: str = ""
    alias: str = ""  # another id the gateway uses for the payment (Stripe: the PaymentIntent of a Checkout session)


@dataclass(frozen=True)
class Notification:
    event_id: str
    event_type: str
    gateway_reference: str
    status: GatewayStatus
    payload: dict
    merchant_reference: str = ""  # our own reference, where the gateway echoes it


class Gateway(ABC):
    name: str

    @abstractmethod
    def start(
        self, *, amount: Decimal, currency: str, reference: str, idempotency_key: str, return_url: str, notify_url: str
    ) -> StartResult: ...

    @abstractmethod
    def capture(
        self, *, gateway_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> OperationResult: ...

    @abstractmethod
    def void(self, *, gateway_reference: str, idempotency_key: str) -> OperationResult: ...

    @abstractmethod
    def refund(
        self, *, gateway_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> OperationResult: ...

    @abstractmethod
    def fetch_status(self, *, gateway_reference: str) -> GatewayStatus: ...

    @abstractmethod
    def parse_notification(self, *, body: bytes, headers: Mapping[str, str]) -> Notification:
        """Verify and decode a notification; raises InvalidNotification."""


@cache
def _gateways() -> dict[str, Gateway]:
    from payments.gateways.stripe_gateway import StripeGateway
    from payments.gateways.test_gateway import TestGateway

    return {"test": TestGateway(), "stripe": StripeGateway()}


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.PAYMENTS_GATEWAY
    if name == "test" and not settings.PAYMENTS_TEST_GATEWAY_ENABLED:
        raise GatewayUnavailable("the test gateway is switched off (PAYMENTS_TEST_GATEWAY_ENABLED)")
    try:
        return _gateways()[name]
    except KeyError:
        raise GatewayUnavailable(f"no payment gateway called {name!r}") from None
