"""Public face of shop: the checkout, the process that turns a cart into an order (keyword-only, plain values in
and out).

    quote = checkout_quote(lines=[(variant_id, 2)], shipping_method="standard")
    started = checkout_place(token=..., review_token=..., details=..., lines=..., user_id=..., site_url=...)
    outcome = checkout_return(number=started.order_number, user_id=..., access_token=started.access_token)
    again = checkout_pay_again(number=..., attempt=outcome.order.next_attempt, user_id=..., access_token=...,
                               site_url=...)

The process is shop's; the rules are the services': catalog holds the stock, orders prices and keeps the order,
payments talks to the gateway. Each of them opens its own transaction, so the checkout opens none around them (one
module, one transaction). Placing is idempotent by the review form's one-time token: a second "Place order" with
the same token finds the same order and the same payment. Paying again after a refusal starts a new payment for
the same order, idempotent by the attempt's number: "<order number>:attempt:<n>".

Vouchers: the cart keeps the code the customer applied (checkout_voucher_apply checks it first) in the session,
signed in or not, and every quote is asked with it, so the cart, the details page and the review show the same
discount, or say why the code stopped applying (the cart changed, the code was used up). The review page's quote
decides: checkout_place is given the code the review showed applied, and orders records its use with the order;
if it was used up meanwhile the customer is sent back to the review (VoucherNoLongerApplies), which then shows the
order without it. The automatic promotion needs nothing from the shop: every quote has it.

Refusals are CheckoutError subclasses whose message is meant for the customer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.services import AccountError, AddressInfo, address_list, address_remember, user_get
from catalog.services import OutOfStock
from orders import services as orders
from orders.services import OrderInfo, OrderStatus, Quote, ShippingMethod
from payments.services import (
    GatewayUnavailable,
    PaymentError,
    PaymentInfo,
    PaymentStatus,
    payment_authorize,
    payment_refresh,
)

logger = logging.getLogger(__name__)
CheckoutState = Literal["paid", "failed", "cancelled", "pending"]
MAX_TOKEN_LENGTH = 64
MAX_PAYMENT_ATTEMPTS = 10  # per order: each attempt opens a payment at the gateway

__all__ = [
    "CartEmpty",
    "CartTotals",
    "CartUnavailable",
    "CheckoutDetails",
    "CheckoutError",
    "CheckoutOptions",
    "CheckoutOutcome",
    "CheckoutStarted",
    "CheckoutState",
    "OrderNotFound",
    "PayAgainRefused",
    "PaymentNotStarted",
    "ReviewOutOfDate",
    "VoucherNoLongerApplies",
    "VoucherNotApplicable",
    "cart_discounts",
    "cart_totals",
    "checkout_options",
    "checkout_pay_again",
    "checkout_place",
    "checkout_quote",
    "checkout_return",
    "checkout_voucher_apply",
]


class CheckoutError(Exception):
    """The checkout cannot go on; the message says why, in words for the customer."""


class CartEmpty(CheckoutError):
    """There is nothing in the cart to check out."""


class CartUnavailable(CheckoutError):
    """A line of the cart cannot be bought (taken off sale, out of stock): the cart needs adjusting."""


class ReviewOutOfDate(CheckoutError):
    """The "Place order" form is missing its token or is not the review page shown last: review again."""


class PaymentNotStarted(CheckoutError):
    """The gateway could not be asked to take the payment. Nothing was charged; placing again is safe."""


class VoucherNotApplicable(CheckoutError):
    """The code typed cannot be used for this cart (unknown, expired, used up, minimum spend not reached, ...)."""


class VoucherNoLongerApplies(CheckoutError):
    """The voucher the review showed could not be used when the order was placed (used up meanwhile, say). Nothing
    was placed; the review, shown again, prices the order without it."""


class OrderNotFound(CheckoutError):
    """No such order for this customer (or this guest's access token)."""


class PayAgainRefused(CheckoutError):
    """The order cannot be paid again: it is paid (or its payment is going through), cancelled, or the page that
    asked was out of date. Its return page says where it stands."""


@dataclass(frozen=True)
class CheckoutDetails:
    """What the customer entered on the details page."""

    email: str
    address: Mapping[str, str]
    shipping_method: str
    billing_address: Mapping[str, str] | None = None  # None: the invoice goes to the delivery address
    save_address: bool = False  # keep the (new) delivery address in the customer's address book once placed


@dataclass(frozen=True)
class CheckoutOptions:
    """What the details page offers: the cart priced (with standard delivery, and once per delivery method), the
    delivery methods for it, the saved addresses and the customer's name."""

    quote: Quote
    shipping_methods: tuple[ShippingMethod, ...]
    addresses: tuple[AddressInfo, ...]
    quotes: tuple[Quote, ...] = ()  # one per delivery method, in the order of shipping_methods
    full_name: str = ""  # the signed-in customer's name, from their profile

    @property
    def default_address(self) -> AddressInfo | None:
        """The customer's default delivery address, or else the newest one."""
        return next((a for a in self.addresses if a.is_default_shipping), self.addresses[0] if self.addresses else None)


@dataclass(frozen=True)
class CheckoutStarted:
    """An order placed and its payment started."""

    order_number: str
    access_token: str  # the signed token of the guest's link (?t=), which opens this order only
    return_url: str  # the confirmation page, where the gateway sends the customer back
    next_url: str  # where to send the customer now: the gateway's page, or straight back when there is none


@dataclass(frozen=True)
class CheckoutOutcome:
    """Where an order stands when the customer comes back from the gateway."""

    order: OrderInfo
    payment: PaymentInfo | None
    state: CheckoutState

    @property
    def paid(self) -> bool:
        return self.state == "paid"


@dataclass(frozen=True)
class CartTotals:
    """What the cart page says about delivery and tax before the checkout: the subtotal with the cheapest delivery,
    taxed by orders' rules, and how far the subtotal is from free delivery."""

    totals: orders.Totals  # with the cheapest delivery method
    delivery_from: Decimal  # the cheapest method's price (0: free)
    several_prices: bool  # the methods cost different amounts: the delivery is "from" delivery_from
    missing_for_free: Decimal | None  # how much more for free delivery; 0 once it is free; None: never free

    @property
    def free_delivery(self) -> bool:
        return self.delivery_from == 0


def cart_totals(
    *, subtotal: Decimal, discount: Decimal = Decimal(0), shipping_discount: Decimal = Decimal(0)
) -> CartTotals:
    """The cart's summary: orders' delivery methods for the subtotal, and its total and VAT with the cheapest, after
    the discounts the cart shows (cart_discounts: the promotion and the voucher, a free delivery voucher's waiver)."""
    methods = orders.shipping_methods(subtotal=subtotal)
    cheapest = min(methods, key=lambda m: m.price)
    freeable = [m.missing_for_free for m in methods if m.missing_for_free is not None]
    return CartTotals(
        totals=orders.order_totals(
            subtotal=subtotal, shipping_method=cheapest.code, discount=discount, shipping_discount=shipping_discount
        ),
        delivery_from=max(cheapest.price - shipping_discount, Decimal(0)),
        several_prices=len({m.price for m in methods}) > 1,
        missing_for_free=Decimal(0) if shipping_discount >= cheapest.price else min(freeable) if freeable else None,
    )


def checkout_quote(
    *,
    lines: Sequence[tuple[int, int]],
    shipping_method: str = "standard",
    voucher_code: str = "",
    user_id: int | None = None,
    email: str = "",
) -> Quote:
    """The cart's (variant id, quantity) lines priced now, with delivery, tax, the promotion running and the
    voucher (quote.voucher_error says why a code does not apply)."""
    if not lines:
        raise CartEmpty("Your cart is empty.")
    try:
        return orders.order_quote(lines=list(lines), shipping_method=shipping_method, voucher_code=voucher_code,
                                  user_id=user_id, email=email)  # fmt: skip
    except orders.UnavailableItem as exc:
        raise CartUnavailable(str(exc)) from exc


def cart_discounts(
    *, lines: Sequence[tuple[int, Decimal]], voucher_code: str = "", user_id: int | None = None
) -> orders.Discounts:
    """The cart page's promotion and voucher lines, from its (product id, line total) pairs at current prices."""
    return orders.order_discounts(lines=list(lines), voucher_code=voucher_code, user_id=user_id)


def checkout_voucher_apply(*, lines: Sequence[tuple[int, int]], code: str, user_id: int | None) -> str:
    """Check a code the customer typed in the cart against the cart. Returns the code as the shop keeps it (trimmed,
    capitals), to remember in the session. Raises VoucherNotApplicable saying why not, CartEmpty, CartUnavailable."""
    normalised = orders.voucher_normalise(code=code)
    if not normalised:
        raise VoucherNotApplicable("Enter a voucher code.")
    quote = checkout_quote(lines=lines, voucher_code=normalised, user_id=user_id)
    if quote.voucher is None:
        raise VoucherNotApplicable(quote.voucher_error)
    return quote.voucher.code


def checkout_options(
    *, lines: Sequence[tuple[int, int]], user_id: int | None, voucher_code: str = ""
) -> CheckoutOptions:
    """The details page's choices: the priced cart, the delivery methods for its subtotal (each with the cart's
    total with it), the saved addresses and the name of a signed-in customer."""
    if not lines:
        raise CartEmpty("Your cart is empty.")
    try:  # the cart priced once, with each delivery method
        quotes = orders.order_quotes(lines=list(lines), voucher_code=voucher_code, user_id=user_id)
    except orders.UnavailableItem as exc:
        raise CartUnavailable(str(exc)) from exc
    quote = next(q for q in quotes if q.shipping.code == "standard")
    methods = tuple(q.shipping for q in quotes)
    full_name = ""
    if user_id is not None:
        with contextlib.suppress(AccountError):  # an account deleted meanwhile: no name to offer
            full_name = user_get(user_id=user_id).full_name
    return CheckoutOptions(
        quote=quote,
        shipping_methods=methods,
        addresses=address_list(user_id=user_id) if user_id is not None else (),
        quotes=quotes,
        full_name=full_name,
    )


def checkout_place(
    *,
    token: str,
    review_token: str | None,
    details: CheckoutDetails | None,
    lines: Sequence[tuple[int, int]],
    user_id: int | None,
    site_url: str,
    voucher_code: str = "",
) -> CheckoutStarted:
    """Place the order (stock reserved, order pending payment) and start its payment.

    token: the one sent by the "Place order" form; review_token: the one of the review page shown last, with the
    details it showed. Placing and paying are idempotent by the token, so pressing twice, or the browser sending the
    form again, finds the order and payment of the first time. site_url ("https://shop.example.com") prefixes the
    addresses given to the gateway. voucher_code: the code the review page showed applied ("" for none).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise ReviewOutOfDate("Please review your order again before placing it.")
    key = f"checkout:{token}"
    current = details is not None and token == review_token
    order = None if current else orders.order_by_key(idempotency_key=key)
    if order is None:
        if not current:
            raise ReviewOutOfDate("This page was out of date. Please check your order and place it again.")
        try:
            order = orders.order_place(
                idempotency_key=key, lines=list(lines), shipping_method=details.shipping_method,
                shipping_address=dict(details.address), email=details.email, user_id=user_id,
                voucher_code=voucher_code,
                billing_address=dict(details.billing_address) if details.billing_address else None,
            )  # fmt: skip
        except orders.VoucherRefused as exc:
            raise VoucherNoLongerApplies(f"{exc} Your order was not placed; please check it again.") from exc
        except OutOfStock as exc:
            raise CartUnavailable(f"{exc} Your cart is unchanged; please adjust it.") from exc
        except (orders.EmptyBasket, orders.UnavailableItem) as exc:
            raise CartUnavailable(str(exc)) from exc
        if details.save_address and user_id is not None:
            _remember_address(user_id=user_id, address=details.address)
    return_url = _return_url(order, site_url)
    try:
        payment = payment_authorize(
            reference=order.number, amount=order.total, currency=order.currency, idempotency_key=key,
            return_url=return_url,
            notify_url=site_url + reverse("payments:notify", args=[settings.PAYMENTS_GATEWAY]),
        )  # fmt: skip
    except (PaymentError, GatewayUnavailable) as exc:
        raise PaymentNotStarted(
            f"We could not start the payment ({exc}). Nothing was charged; please try again."
        ) from exc
    orders.order_attach_payment(number=order.number, payment_id=payment.id)
    return _started(order, payment, return_url)


def _remember_address(*, user_id: int, address: Mapping[str, str]) -> None:
    """The order is placed; keeping its address in the address book is a favour, never a reason to fail it."""
    try:
        address_remember(user_id=user_id, **dict(address))
    except (AccountError, ValidationError, ValueError):
        logger.warning("checkout: could not save the address of customer %s", user_id, exc_info=True)
    except Exception:
        logger.exception("checkout: saving the address of customer %s failed", user_id)


def _return_url(order: OrderInfo, site_url: str) -> str:
    return site_url + reverse("shop:checkout-return", args=[order.number]) + f"?t={order.link_token}"


def _started(order: OrderInfo, payment: PaymentInfo, return_url: str) -> CheckoutStarted:
    failed = payment.status == PaymentStatus.FAILED
    if failed:  # refused at once (the gateway unreachable): say so on the order, whether or not its event ran yet
        orders.order_payment_failed(number=order.number, message=payment.customer_message, payment_id=payment.id)
    next_url = return_url if failed or not payment.redirect_url else payment.redirect_url
    return CheckoutStarted(
        order_number=order.number, access_token=order.link_token, return_url=return_url, next_url=next_url
    )


def checkout_pay_again(
    *, number: str, attempt: int, user_id: int | None, access_token: str | None, site_url: str
) -> CheckoutStarted:
    """Start a new payment for the same order, still awaiting payment (its payment failed, or the customer left the
    gateway's page), with the same or another card: the order number, its lines and its held stock stay.

    attempt: the number the "Pay again" form was shown for (OrderInfo.next_attempt). It keys the payment
    ("<number>:attempt:<attempt>"), so two presses at once, or the form sent again, start one payment. A new
    attempt is refused while the current payment is authorised (the order is being paid); an earlier attempt that
    still goes through pays the order, and orders voids whichever other payment is authorised after it. Raises
    OrderNotFound (not this customer's, or a wrong access token), PayAgainRefused, PaymentNotStarted."""
    try:
        order = orders.order_get(number=number, user_id=user_id, access_token=access_token, history=False)
    except orders.OrderNotFound:
        raise OrderNotFound("No such order") from None
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise PayAgainRefused("This order is no longer awaiting payment.")
    if attempt < 2 or attempt not in (order.payment_attempt, order.next_attempt):
        raise PayAgainRefused("This page was out of date. Here is where your order stands.")
    if attempt == order.next_attempt and order.payment_attempt >= MAX_PAYMENT_ATTEMPTS:
        raise PayAgainRefused(
            "This order has been tried too many times. Please contact us, or cancel it and order again."
        )
    if attempt == order.next_attempt and order.payment_id:
        current = payment_refresh(payment_id=order.payment_id)  # asks the gateway while it is pending
        if current.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            raise PayAgainRefused("Your payment went through: there is nothing more to pay.")
    return_url = _return_url(order, site_url)
    try:
        payment = payment_authorize(
            reference=order.number, amount=order.total, currency=order.currency,
            idempotency_key=f"{order.number}:attempt:{attempt}", return_url=return_url,
            notify_url=site_url + reverse("payments:notify", args=[settings.PAYMENTS_GATEWAY]),
        )  # fmt: skip
    except (PaymentError, GatewayUnavailable) as exc:
        raise PaymentNotStarted(
            f"We could not start the payment ({exc}). Nothing was charged; please try again."
        ) from exc
    actor = f"customer:{user_id}" if user_id is not None else "guest"
    try:
        orders.order_payment_retry(number=order.number, attempt=attempt, payment_id=payment.id, actor=actor)
    except orders.IllegalTransition as exc:  # paid by the earlier attempt, or expired, meanwhile
        raise PayAgainRefused(str(exc)) from None
    return _started(order, payment, return_url)


def checkout_return(*, number: str, user_id: int | None, access_token: str | None) -> CheckoutOutcome:
    """The customer is back from the gateway: while the payment is pending, ask the gateway for its outcome (which
    moves the order on), then say where the order stands: paid (confirmed), failed (the current attempt's payment
    was refused; the order still awaits payment and may be paid again), cancelled (by the customer, or its
    reservation expired), or pending (still confirming)."""
    try:
        order = orders.order_get(number=number, user_id=user_id, access_token=access_token, history=False)
    except orders.OrderNotFound:
        raise OrderNotFound("No such order") from None
    payment = None
    undecided = (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)
    if order.payment_id and order.status in undecided:
        payment = payment_refresh(payment_id=order.payment_id)  # asks the gateway while the payment is pending
        if order.status == OrderStatus.PENDING_PAYMENT and payment.status != PaymentStatus.PENDING:  # moved on
            order = orders.order_current(order)
    state: CheckoutState
    if order.status not in undecided:
        state = "paid"
    elif order.status == OrderStatus.CANCELLED:
        state = "cancelled"
    elif payment is not None and payment.status == PaymentStatus.FAILED:
        state = "failed"
    else:
        state = "pending"
    return CheckoutOutcome(order=order, payment=payment, state=state)
