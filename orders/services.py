"""Public face of orders: pricing a basket, placing orders, their lifecycle, and what customers may see.

Statuses (OrderStatus): pending_payment -> paid -> fulfilling -> shipped -> delivered, plus cancelled and refunded.
The state machine is closed: every change is a named command (order_mark_paid, order_cancel, order_start_fulfilment,
order_ship, order_deliver, order_refund, ...), which refuses an illegal one (IllegalTransition) and writes the
status history with who and when. Orders react to payments' and catalog's events (orders.handlers) and ask
catalog to sell or return stock and payments to capture, void or refund by commands sent through orders' outbox,
in the same transaction as the change that needs them.

Vouchers and automatic promotions price the basket in order_quote (voucher_code=..., and user_id / email for the
per-customer limit): the rules, how they combine, how discounts are allocated to the lines and when a voucher's
use is given back are in orders.vouchers. order_place records the use in the transaction that creates the order,
under the voucher's row lock, and raises VoucherRefused when the code no longer applies; order_cancel (and the
expiry of unpaid orders) gives it back.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone

from catalog.events import CommitReservation, ReleaseReservation
from catalog.services import stock_release, stock_reserve, variants_get
from kernel.bus import publish
from kernel.db import atomic, db_for_module, prepared_objects, unique
from kernel.money import round_money
from orders import access, fulfilment, returns, vouchers
from orders.events import OrderCancelled, OrderPaid, OrderPaymentFailed, OrderPlaced, OrderRefunded, OrderRefundIssued
from orders.fulfilment import (
    AUTO_CARRIER,
    ShipmentInfo,
    ShipmentLineInfo,
    carrier_name,
    carrier_update,
    orders_auto_fulfil,
    shipment_claim_email,
    shipment_create,
    shipment_deliver,
    shipment_ship,
    tracking_url_for,
)
from orders.history import HistoryLine, HistoryOrder, HistoryResult, orders_demo_history
from orders.models import Order, OrderLine, Shipment, StatusChange
from orders.returns import (
    REASONS,
    ReturnError,
    ReturnInfo,
    ReturnLineInfo,
    ReturnNotFound,
    order_payment_refunded,
    order_refund_amount,
    return_receive,
    return_refund,
    return_request,
)
from orders.state import (
    ALLOWED,
    CANCELLABLE,
    EmptyBasket,
    IllegalTransition,
    OrderError,
    OrderNotFound,
    ShipmentError,
    ShipmentNotFound,
    UnavailableItem,
)
from orders.state import locked as _locked
from orders.state import transition as _transition
from orders.vouchers import PromotionApplied, VoucherApplied, VoucherRefused, normalise_code
from payments.events import CancelPayment, RefundPayment
from payments.services import PaymentError

logger = logging.getLogger(__name__)
Status = Order.Status
OrderStatus = Order.Status  # public: callers compare against these, never strings
ANONYMISED_DOMAIN = "@invalid.example"  # the email address of an order whose customer deleted their account
NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read out on the phone

# ---------------------------------------------------------------- pricing


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    name: str
    price: Decimal
    days: str
    free_above: Decimal | None = None  # the subtotal from which this method is free (None: never free)
    subtotal: Decimal = Decimal(0)  # the subtotal it was priced for

    @property
    def missing_for_free(self) -> Decimal | None:
        """How much more the subtotal needs for this method to be free; None when it never is, 0 when it is."""
        if self.free_above is None:
            return None
        return max(self.free_above - self.subtotal, Decimal(0))


def shipping_methods(*, subtotal: Decimal) -> tuple[ShippingMethod, ...]:
    """Standard and express, cheapest first; standard is free from SHOP_FREE_SHIPPING_ABOVE."""
    free_above = Decimal(settings.SHOP_FREE_SHIPPING_ABOVE)
    free = subtotal >= free_above
    return (
        ShippingMethod("standard", "Standard delivery", Decimal(0) if free else Decimal("4.90"), "3-5 working days",
                       free_above, subtotal),
        ShippingMethod("express", "Express delivery", Decimal("9.90"), "next working day", None, subtotal),
    )  # fmt: skip


@dataclass(frozen=True)
class Totals:
    """A subtotal with a delivery method, taxed: what the cart shows before the checkout prices its lines."""

    currency: str
    subtotal: Decimal
    shipping: ShippingMethod
    tax: Decimal
    total: Decimal
    prices_include_tax: bool
    tax_rate: Decimal


def order_totals(
    *,
    subtotal: Decimal,
    shipping_method: str = "standard",
    discount: Decimal = Decimal(0),
    shipping_discount: Decimal = Decimal(0),
) -> Totals:
    """Delivery, tax and total for a subtotal, by the same rules as order_quote: the delivery method is priced on the
    subtotal before discounts, then discount (off the goods) and shipping_discount (off the delivery, at most its
    price) are taken off (order_discounts gives both). Raises ValueError for an unknown shipping method."""
    method = next((m for m in shipping_methods(subtotal=subtotal) if m.code == shipping_method), None)
    if method is None:
        raise ValueError(f"unknown shipping method {shipping_method!r}")
    tax, total = _tax_and_total(subtotal - discount + method.price - min(shipping_discount, method.price))
    return Totals(settings.SHOP_CURRENCY, subtotal, method, tax, total, settings.SHOP_PRICES_INCLUDE_TAX,
                  Decimal(settings.SHOP_TAX_RATE))  # fmt: skip


def _tax_and_total(amount: Decimal) -> tuple[Decimal, Decimal]:
    """The tax in (or on) an amount of goods and delivery, and the total the customer pays."""
    currency = settings.SHOP_CURRENCY
    rate = Decimal(settings.SHOP_TAX_RATE)
    gross = round_money(amount, currency)
    if settings.SHOP_PRICES_INCLUDE_TAX:
        return round_money(gross - gross / (1 + rate), currency), gross
    tax = round_money(gross * rate, currency)
    return tax, gross + tax


@dataclass(frozen=True)
class QuoteLine:
    variant_id: int
    product_id: int
    sku: str
    name: str
    variant_label: str
    unit_price: Decimal
    quantity: int
    discount: Decimal = Decimal(0)  # this line's share of the promotion and voucher

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def discounted_total(self) -> Decimal:
        return self.line_total - self.discount


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]
    currency: str
    subtotal: Decimal
    shipping: ShippingMethod
    tax: Decimal
    total: Decimal
    prices_include_tax: bool
    tax_rate: Decimal
    discount: Decimal = Decimal(0)  # off the goods, promotion and voucher together (the lines' discounts)
    promotion: PromotionApplied | None = None
    voucher: VoucherApplied | None = None
    voucher_code: str = ""  # the code asked for, normalised, whether or not it applies
    voucher_error: str = ""  # why it does not apply, in the customer's words
    shipping_discount: Decimal = Decimal(0)  # the delivery charge a free delivery voucher waived
    voucher_refusal: str = ""  # and VoucherRefused.reason: unknown, expired, used_up, minimum_spend, ...

    @property
    def promotion_discount(self) -> Decimal:
        return self.promotion.discount if self.promotion else Decimal(0)

    @property
    def voucher_discount(self) -> Decimal:
        return self.voucher.discount if self.voucher else Decimal(0)

    @property
    def promotion_name(self) -> str:
        return self.promotion.name if self.promotion else ""

    @property
    def discounted_subtotal(self) -> Decimal:
        return self.subtotal - self.discount

    @property
    def shipping_price(self) -> Decimal:
        """What the customer pays for delivery."""
        return self.shipping.price - self.shipping_discount


def order_quote(
    *,
    lines: list[tuple[int, int]],
    shipping_method: str = "standard",
    voucher_code: str = "",
    user_id: int | None = None,
    email: str = "",
) -> Quote:
    """Price a basket of (variant_id, quantity) with fresh catalog prices, the automatic promotion running and the
    voucher asked for (a code that does not apply leaves the basket undiscounted by it and says why in
    voucher_error; the per-customer limit is checked for user_id, or email for a guest, when given). Raises
    EmptyBasket, UnavailableItem."""
    quoted, subtotal = _quote_lines(lines)
    method = next((m for m in shipping_methods(subtotal=subtotal) if m.code == shipping_method), None)
    if method is None:
        raise ValueError(f"unknown shipping method {shipping_method!r}")
    return _priced(quoted, subtotal, method, voucher_code, user_id, email)


def order_quotes(
    *, lines: list[tuple[int, int]], voucher_code: str = "", user_id: int | None = None, email: str = ""
) -> tuple[Quote, ...]:
    """order_quote for every delivery method (shipping_methods' order), the basket read once: the checkout's
    details page shows the total with each. Raises EmptyBasket, UnavailableItem."""
    quoted, subtotal = _quote_lines(lines)
    methods = shipping_methods(subtotal=subtotal)
    return tuple(_priced(quoted, subtotal, method, voucher_code, user_id, email) for method in methods)


def _quote_lines(lines: list[tuple[int, int]]) -> tuple[list[QuoteLine], Decimal]:
    if not lines:
        raise EmptyBasket("the basket is empty")
    variants = variants_get(variant_ids=[v for v, _ in lines])
    quoted = []
    for variant_id, quantity in lines:
        variant = variants.get(variant_id)
        if variant is None or not variant.is_active:
            raise UnavailableItem("An item in your cart is no longer on sale.")
        quoted.append(
            QuoteLine(variant.id, variant.product_id, variant.sku, variant.product_title, variant.label,
                      variant.price, quantity)
        )  # fmt: skip
    return quoted, sum((line.line_total for line in quoted), Decimal(0))


def _priced(quoted: list[QuoteLine], subtotal: Decimal, method: ShippingMethod, voucher_code: str,
            user_id: int | None, email: str) -> Quote:  # fmt: skip
    currency = settings.SHOP_CURRENCY
    rate = Decimal(settings.SHOP_TAX_RATE)
    pricing = vouchers.price(
        product_ids=[line.product_id for line in quoted], line_totals=[line.line_total for line in quoted],
        currency=currency, shipping_price=method.price, voucher_code=voucher_code, user_id=user_id, email=email,
    )  # fmt: skip
    quoted = [dataclasses.replace(line, discount=d) for line, d in zip(quoted, pricing.line_discounts, strict=True)]
    tax, total = _tax_and_total(subtotal - pricing.discount + method.price - pricing.shipping_discount)
    return Quote(tuple(quoted), settings.SHOP_CURRENCY, subtotal, method, tax, total,
                 settings.SHOP_PRICES_INCLUDE_TAX, rate, pricing.discount, pricing.promotion, pricing.voucher,
                 normalise_code(voucher_code), str(pricing.voucher_error or ""), pricing.shipping_discount,
                 pricing.voucher_error.reason if pricing.voucher_error else "")  # fmt: skip


@dataclass(frozen=True)
class Discounts:
    """A basket's discounts alone (order_discounts), for a page that priced its lines already (the cart)."""

    currency: str
    subtotal: Decimal
    discount: Decimal
    promotion: PromotionApplied | None
    voucher: VoucherApplied | None
    voucher_code: str
    voucher_error: str
    shipping_discount: Decimal

    @property
    def discounted_subtotal(self) -> Decimal:
        return self.subtotal - self.discount


def order_discounts(
    *, lines: list[tuple[int, Decimal]], voucher_code: str = "", user_id: int | None = None, email: str = ""
) -> Discounts:
    """The promotion and voucher for a basket given as (product_id, line total) pairs at current prices, with the
    standard delivery for the free delivery vouchers: what order_quote would take off, without reading the
    variants again. No query at all without a code and with no promotion naming categories."""
    currency = settings.SHOP_CURRENCY
    subtotal = sum((total for _, total in lines), Decimal(0))
    standard = shipping_methods(subtotal=subtotal)[0]
    pricing = vouchers.price(product_ids=[p for p, _ in lines], line_totals=[t for _, t in lines], currency=currency,
                             shipping_price=standard.price, voucher_code=voucher_code, user_id=user_id,
                             email=email)  # fmt: skip
    error = str(pricing.voucher_error or "")
    return Discounts(currency, subtotal, pricing.discount, pricing.promotion, pricing.voucher,
                     normalise_code(voucher_code), error, pricing.shipping_discount)  # fmt: skip


def voucher_normalise(*, code: str) -> str:
    """A code as the shop keeps it: trimmed, in capitals (codes are case-insensitive)."""
    return normalise_code(code)


def vouchers_demo_seed(*, category_id: int | None = None, category_name: str = "") -> list[str]:
    """The demo shop's vouchers (WELCOME10, FREESHIP) and a promotion running this week on the category given.
    Idempotent. Returns what it made."""
    with atomic(module="orders"):
        return vouchers.demo_seed(category_id=category_id, category_name=category_name)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class OrderLineInfo:
    sku: str
    name: str
    variant_label: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    id: int = 0
    discount: Decimal = Decimal(0)  # the line's share of the order's discount
    product_id: int = 0
    variant_id: int = 0
    quantity_shipped: int = 0
    quantity_delivered: int = 0
    quantity_returned: int = 0
    quantity_refunded: int = 0
    returnable: int = 0  # how many the customer may still ask to return


@dataclass(frozen=True)
class StatusChangeInfo:
    from_status: str
    to_status: str
    label: str
    actor: str
    note: str
    at: datetime


@dataclass(frozen=True)
class OrderInfo:
    id: int
    number: str
    user_id: int | None
    email: str
    status: str
    status_label: str
    currency: str
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    prices_include_tax: bool
    shipping_method: str
    shipping_address: dict
    payment_id: int | None
    access_token: str
    created_at: datetime
    lines: tuple[OrderLineInfo, ...]
    history: tuple[StatusChangeInfo, ...]
    shipments: tuple[ShipmentInfo, ...] = ()
    returns: tuple[ReturnInfo, ...] = ()
    amount_refunded: Decimal = Decimal(0)
    payment_attempt: int = 1  # 1 at checkout, one more per "Pay again"
    payment_failure: str = ""  # why the current attempt failed, in the customer's words; empty otherwise
    discount: Decimal = Decimal(0)  # off the goods: promotion_discount + voucher_discount
    promotion_name: str = ""
    promotion_discount: Decimal = Decimal(0)
    voucher_code: str = ""
    voucher_discount: Decimal = Decimal(0)
    shipping_discount: Decimal = Decimal(0)  # delivery charge waived by a free delivery voucher

    @property
    def discounted_subtotal(self) -> Decimal:
        return self.subtotal - self.discount

    @property
    def shipping_price(self) -> Decimal:
        return self.shipping

    billing_address: dict = dataclasses.field(default_factory=dict)  # the shipping address unless another was given

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE

    @property
    def payment_failed(self) -> bool:
        """Still awaiting payment after its current attempt failed: the customer may pay again."""
        return self.status == Status.PENDING_PAYMENT and bool(self.payment_failure)

    @property
    def next_attempt(self) -> int:
        """The attempt a "Pay again" form shown now starts."""
        return self.payment_attempt + 1

    @property
    def link_token(self) -> str:
        """The signed token (?t=) that lets the guest holding it open this order, pay it again, cancel it or ask for a
        return; it opens no other order. See orders.access."""
        return access.link_token(self.number, self.access_token)

    @property
    def url(self) -> str:
        """The order page's absolute address (SHOP_SITE_URL), for emails: with the signed token for a guest's order,
        plain for a customer's, who signs in to open it."""
        return access.order_url(self.number, self.access_token, guest=self.user_id is None)

    @property
    def shipping_method_name(self) -> str:
        names = {method.code: method.name for method in shipping_methods(subtotal=self.subtotal)}
        return names.get(self.shipping_method, self.shipping_method)

    @property
    def anonymised(self) -> bool:
        """Its customer deleted their account: there is nobody to write to."""
        return self.email.endswith(ANONYMISED_DOMAIN)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def _info(order: Order, lines: Iterable[OrderLine] | None = None, history: Iterable[StatusChange] | None = None,
          parcels: bool = True) -> OrderInfo:  # fmt: skip
    """lines and history default to the order's (prefetched) relations. parcels=False leaves out the parcels and
    returns (and their queries)."""
    lines = list(order.lines.all() if lines is None else lines)
    shipments = fulfilment.shipments_of(order, lines) if parcels else ()
    rets = returns.returns_of(order, lines) if parcels else ()
    left = returns.returnable(order, lines) if parcels else {}
    lines = tuple(
        OrderLineInfo(li.sku, li.name, li.variant_label, li.unit_price, li.quantity, li.line_total, li.pk,
                      li.discount, li.product_id, li.variant_id, li.quantity_shipped, li.quantity_delivered,
                      li.quantity_returned, li.quantity_refunded, left.get(li.pk, 0))
        for li in lines
    )  # fmt: skip
    history = tuple(
        StatusChangeInfo(h.from_status, h.to_status, Status(h.to_status).label, h.actor, h.note, h.at)
        for h in (order.history.all() if history is None else history)
    )
    return OrderInfo(
        order.pk, order.number, order.user_id, order.email, order.status, Status(order.status).label, order.currency,
        order.subtotal, order.shipping, order.tax, order.total, order.prices_include_tax, order.shipping_method,
        order.shipping_address, order.payment_id, order.access_token, order.created_at, lines, history, shipments,
        rets, order.amount_refunded, order.payment_attempt, order.payment_failure, order.discount,
        order.promotion_name, order.promotion_discount, order.voucher_code, order.voucher_discount,
        order.shipping_discount,
        order.billing_address or order.shipping_address,
    )  # fmt: skip


@dataclass(frozen=True)
class _Loaded:
    order: Order
    lines: list[OrderLine]
    history: list[StatusChange]


def _by_number(number: str) -> QuerySet:
    return Order.objects.filter(number=number)


def _by_key(key: str) -> QuerySet:
    return Order.objects.filter(idempotency_key=key)


def _lines_of(order_id: int) -> QuerySet:
    return OrderLine.objects.filter(order_id=order_id)


def _history_of(order_id: int) -> QuerySet:
    return StatusChange.objects.filter(order_id=order_id)


def _load(*, number: str | None = None, idempotency_key: str | None = None, history: bool = True) -> _Loaded | None:
    """One order by its number or its idempotency key, with its lines and (unless history=False, one query less)
    its history, each in the order of the models' own ordering. The reads are compiled once (kernel.db.
    prepared_objects): the return page, placing and every email read an order so."""
    alias = db_for_module("orders")
    if number is not None:
        found = prepared_objects("orders.order_by_number", _by_number, number, using=alias)
    else:
        found = prepared_objects("orders.order_by_key", _by_key, idempotency_key, using=alias)
    if not found:
        return None
    order = found[0]
    lines = prepared_objects("orders.order_lines", _lines_of, order.pk, using=alias)
    changes = prepared_objects("orders.order_history", _history_of, order.pk, using=alias) if history else []
    return _Loaded(order, lines, changes)


def order_get(
    *, number: str, user_id: int | None = None, access_token: str | None = None, history: bool = True
) -> OrderInfo:
    """An order, if the customer (user_id) owns it or the guest holds its access token. Raises OrderNotFound.
    With history=False the status history is left out."""
    loaded = _load(number=number, history=history)
    allowed = loaded is not None and (
        (user_id is not None and loaded.order.user_id == user_id)
        or access.opens(loaded.order.number, loaded.order.access_token, access_token)
    )
    if not allowed:
        raise OrderNotFound(number)
    return _info(loaded.order, loaded.lines, loaded.history)


def order_find(*, number: str, history: bool = True) -> OrderInfo:
    """For the shop's own processes (no customer check). Raises OrderNotFound."""
    loaded = _load(number=number, history=history)
    if loaded is None:
        raise OrderNotFound(number)
    return _info(loaded.order, loaded.lines, loaded.history)


def order_current(order: OrderInfo) -> OrderInfo:
    """The same order with its status read again (one small query): after a payment outcome was applied."""
    status = Order.objects.filter(pk=order.id).values_list("status", flat=True).get()
    if status == order.status:
        return order
    return dataclasses.replace(order, status=status, status_label=Status(status).label)


def order_by_key(*, idempotency_key: str) -> OrderInfo | None:
    loaded = _load(idempotency_key=idempotency_key)
    return _info(loaded.order, loaded.lines, loaded.history) if loaded else None


def orders_for_customer(*, user_id: int, parcels: bool = True) -> tuple[OrderInfo, ...]:
    """The customer's orders, newest first, with their lines and history. parcels=False (a list of orders) leaves
    out their parcels and returns: three queries whatever the number of orders."""
    orders = Order.objects.filter(user_id=user_id).prefetch_related("lines", "history")
    return tuple(_info(o, parcels=parcels) for o in orders)


# ---------------------------------------------------------------- placing


def _new_number() -> str:
    return "NW-" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def order_place(
    *,
    idempotency_key: str,
    lines: list[tuple[int, int]],
    shipping_method: str,
    shipping_address: dict,
    email: str,
    user_id: int | None = None,
    reservation_ttl_seconds: int | None = None,
    voucher_code: str = "",
    billing_address: dict | None = None,
) -> OrderInfo:
    """Reserve the stock and create the order in pending_payment, with line snapshots, the automatic promotion and
    the voucher (its use recorded with the order, under the voucher's lock). Idempotent by key: the same key again
    gives the same order, and the voucher is used once. billing_address: where the invoice goes; the shipping
    address when None or empty.

    Raises catalog's OutOfStock (nothing is held then), EmptyBasket, UnavailableItem or VoucherRefused (the code
    does not apply, or no longer: used up meanwhile, say; nothing is held then either).
    """
    existing = order_by_key(idempotency_key=idempotency_key)
    if existing is not None:
        return existing
    quote = order_quote(lines=lines, shipping_method=shipping_method, voucher_code=voucher_code, user_id=user_id,
                        email=email)  # fmt: skip
    if quote.voucher_code and quote.voucher is None:
        raise VoucherRefused(quote.voucher_error, reason=quote.voucher_refusal, code=quote.voucher_code)
    key = f"order:{idempotency_key}"
    ttl = reservation_ttl_seconds or settings.SHOP_RESERVATION_MINUTES * 60
    stock_reserve(key=key, lines=[(line.variant_id, line.quantity) for line in quote.lines], ttl_seconds=ttl)
    actor = f"customer:{user_id}" if user_id else "guest"
    for _ in range(5):
        number = _new_number()  # 32^8 numbers: taken ones are rare, and the unique index tells
        try:
            return _create(number, idempotency_key, quote, shipping_address, email, user_id, key, actor,
                           billing_address or shipping_address)  # fmt: skip
        except VoucherRefused:
            existing = order_by_key(idempotency_key=idempotency_key)
            if existing is not None:  # the same key at the same moment took the use: the first order stands
                return existing
            stock_release(key=key)
            raise
        except IntegrityError:
            existing = order_by_key(idempotency_key=idempotency_key)
            if existing is not None:  # the same key at the same moment: the first order stands
                return existing
            if not Order.objects.filter(number=number).exists():
                raise
    raise OrderError("could not find a free order number")


def _create(number: str, idempotency_key: str, quote: Quote, shipping_address: dict, email: str,
            user_id: int | None, reservation_key: str, actor: str, billing_address: dict) -> OrderInfo:  # fmt: skip
    """One transaction: the order, its line snapshots, its first history entry and OrderPlaced. The answer is
    built from what was written, not read back."""
    used = quote.voucher is not None and quote.voucher.amount > 0  # a free delivery code on free delivery: unused
    with atomic(module="orders"):
        order = Order.objects.create(
            number=number, user_id=user_id, email=email, currency=quote.currency, subtotal=quote.subtotal,
            shipping=quote.shipping_price, tax=quote.tax, total=quote.total, discount=quote.discount,
            promotion_name=quote.promotion_name[:100], promotion_discount=quote.promotion_discount,
            voucher_code=quote.voucher.code if used else "", voucher_discount=quote.voucher_discount,
            shipping_discount=quote.shipping_discount,
            prices_include_tax=quote.prices_include_tax, shipping_method=quote.shipping.code,
            shipping_address=shipping_address, billing_address=billing_address, reservation_key=reservation_key,
            idempotency_key=idempotency_key,
            access_token=secrets.token_urlsafe(24),
        )  # fmt: skip
        lines = OrderLine.objects.bulk_create(
            OrderLine(order=order, variant_id=li.variant_id, product_id=li.product_id, sku=li.sku, name=li.name,
                      variant_label=li.variant_label, unit_price=li.unit_price, currency=quote.currency,
                      quantity=li.quantity, line_total=li.line_total, discount=li.discount)
            for li in quote.lines
        )  # fmt: skip
        if used:
            vouchers.reserve_use(order=order, applied=quote.voucher, user_id=user_id, email=email)
        placed = StatusChange.objects.create(
            order=order, to_status=Status.PENDING_PAYMENT, actor=actor, note="Order placed"
        )
        publish(
            OrderPlaced(order_id=order.pk, number=order.number, user_id=user_id, total=order.total,
                        currency=order.currency, product_ids=tuple(li.product_id for li in quote.lines))
        )  # fmt: skip
    return _info(order, lines, [placed])


def order_attach_payment(*, number: str, payment_id: int) -> None:
    """The checkout's first payment for the order (attempt 1). Later attempts go through order_payment_retry."""
    Order.objects.filter(number=number, payment_id__isnull=True).update(payment_id=payment_id,
                                                                       updated_at=timezone.now())  # fmt: skip


def order_payment_retry(*, number: str, attempt: int, payment_id: int, actor: str) -> None:
    """The customer pays again for an order still awaiting payment (its payment failed, or they left the gateway's
    page): the order now waits for payment `payment_id`, which is attempt number `attempt`, the one after the
    current, and its history says so. The same attempt with the same payment again (a second press of "Pay
    again", the form sent twice) changes nothing. Raises IllegalTransition when the order is no longer awaiting
    payment (an earlier attempt went through, or it expired meanwhile) or `attempt` is not the next one;
    OrderNotFound."""
    with atomic(module="orders"):
        order = _locked(number)
        if (order.payment_attempt, order.payment_id) == (attempt, payment_id):
            return
        if order.status != Status.PENDING_PAYMENT:
            raise IllegalTransition("This order is no longer awaiting payment.")
        if attempt != order.payment_attempt + 1:
            raise IllegalTransition("This page was out of date: the payment was started again already.")
        StatusChange.objects.create(order=order, from_status=order.status, to_status=order.status, actor=actor,
                                    note=f"Payment attempt {attempt} started")  # fmt: skip
        order.payment_id, order.payment_attempt, order.payment_failure = payment_id, attempt, ""
        order.save(update_fields=["payment_id", "payment_attempt", "payment_failure", "updated_at"])


def order_payment_changed(*, number: str) -> None:
    """payments captured or voided (part of) this order's payment on its own time (a parcel's capture after a
    gateway timeout, for instance): the order's status stays, but what its API answer shows of the payment moved,
    so its updated_at does too, for an integrator syncing by `updated_since`. Idempotent by itself."""
    with atomic(module="orders"):
        Order.objects.filter(number=number).update(updated_at=timezone.now())


# ---------------------------------------------------------------- lifecycle
# The state machine is closed: every change is one of the named commands below, each in one orders transaction
# that also publishes what other modules must do (through the outbox): catalog sells or returns the stock,
# payments captures, voids or refunds. None of them calls another module's write inside this transaction.


def _give_money_back(order: Order) -> None:
    if order.payment_id:
        publish(CancelPayment(payment_id=order.payment_id, idempotency_key=f"{order.number}:cancel"))


def _cancel(order: Order, actor: str, note: str, reason: str, release_stock: bool = True) -> None:
    _transition(order, Status.CANCELLED, actor, note)
    if vouchers.give_back(order):
        StatusChange.objects.create(order=order, from_status=order.status, to_status=order.status, actor=actor,
                                    note=f"Voucher {order.voucher_code} given back")  # fmt: skip
    publish(OrderCancelled(order_id=order.pk, number=order.number, reason=reason))
    if release_stock:
        publish(ReleaseReservation(key=order.reservation_key, reference=order.number))
    _give_money_back(order)


def order_mark_paid(*, number: str, payment_id: int) -> None:
    """A payment for the order went through: the order is paid and catalog is asked to sell its reserved stock.
    Idempotent.

    The first payment authorised for an order awaiting payment pays it, whichever attempt it was (an earlier one
    the customer finished late, in another tab, after pressing "Pay again"): the order then points at it. Any other
    payment authorised for the order later (the other attempt, finished too) is voided, so the customer is never
    charged twice. Paid after it was cancelled (it expired while the customer paid): the payment is voided."""
    with atomic(module="orders"):
        order = _locked(number)
        if order.status != Status.PENDING_PAYMENT:
            if order.payment_id == payment_id and order.status != Status.CANCELLED:
                return  # its own payment, reported again
            current = order.payment_id in (None, payment_id)
            key = f"{number}:cancel" if current else f"{number}:cancel:{payment_id}"  # one void per payment
            publish(CancelPayment(payment_id=payment_id, idempotency_key=key))
            if not current and order.status != Status.CANCELLED:
                note = f"Payment {payment_id} of another attempt went through too late; it is voided"
                if not order.history.filter(note=note).exists():  # the report may come twice
                    StatusChange.objects.create(order=order, from_status=order.status, to_status=order.status,
                                                actor="system", note=note)  # fmt: skip
            return
        earlier = order.payment_id not in (None, payment_id)
        order.payment_id, order.payment_failure = payment_id, ""
        note = "Payment authorised (an earlier attempt)" if earlier else "Payment authorised"
        _transition(order, Status.PAID, "system", note, also=("payment_id", "payment_failure"))
        # The stock is sold first (inline, with its compensation if the goods are gone), then OrderPaid goes out:
        # the confirmation it sends finds the order cancelled if it was sold out.
        publish(CommitReservation(key=order.reservation_key, reference=number))
        products = tuple(sorted(set(order.lines.values_list("product_id", flat=True))))
        publish(OrderPaid(order_id=order.pk, number=number, user_id=order.user_id, product_ids=products))


def order_stock_lost(*, number: str) -> None:
    """catalog could not sell a paid order's stock (its hold lapsed and the goods are gone): the order is
    cancelled and the payment voided, once. Idempotent."""
    with atomic(module="orders"):
        order = _locked(number)
        if order.status not in CANCELLABLE:  # shipped already: nothing left to undo here (staff see the history)
            logger.error("order %s is %s, but its stock could not be sold", number, order.status)
            return
        _cancel(order, "system", "Sold out while the payment was made; not charged", "sold_out", release_stock=False)


def order_payment_failed(*, number: str, message: str, payment_id: int | None = None) -> None:
    """The payment of the order's current attempt failed: the order stays awaiting payment, with its stock held,
    and the history and the order's pages say why, so that the customer can pay again (order_payment_retry). The
    reservation's expiry (orders_expire_unpaid) still cancels it if they do not. A failure of an earlier attempt's
    payment changes nothing. Idempotent: recorded once per attempt."""
    with atomic(module="orders"):
        order = unique(Order.objects.select_for_update().filter(number=number))
        if order is None or order.status != Status.PENDING_PAYMENT or order.payment_failure:
            return
        if payment_id is not None and order.payment_id not in (None, payment_id):
            return  # an earlier attempt's payment: the current one stands
        StatusChange.objects.create(order=order, from_status=order.status, to_status=order.status, actor="system",
                                    note=f"Payment failed: {message}"[:300])  # fmt: skip
        order.payment_id = order.payment_id or payment_id
        order.payment_failure = message[:300] or "The payment did not go through."
        order.save(update_fields=["payment_id", "payment_failure", "updated_at"])
        publish(OrderPaymentFailed(order_id=order.pk, number=number, attempt=order.payment_attempt,
                                   message=order.payment_failure))  # fmt: skip


def order_cancel(*, number: str, actor: str, user_id: int | None = None, access_token: str | None = None) -> OrderInfo:
    """Cancel before shipment: catalog returns the stock and payments voids the payment (or refunds it if it was
    captured), each in its own transaction once this one has committed. With user_id or access_token, only the
    owner may. Raises IllegalTransition, OrderNotFound."""
    if user_id is not None or access_token is not None:
        order_get(number=number, user_id=user_id, access_token=access_token)  # ownership
    with atomic(module="orders"):
        order = _locked(number)
        if order.status not in CANCELLABLE:
            raise IllegalTransition("This order has left our warehouse and can no longer be cancelled.")
        order.shipments.filter(status=Shipment.Status.PACKING).delete()  # parcels packed, never handed over
        _cancel(order, actor, "Cancelled", "cancelled")
    return order_find(number=number)


def order_start_fulfilment(*, number: str, actor: str) -> OrderInfo:
    """A paid order is being packed. Raises IllegalTransition, OrderNotFound."""
    with atomic(module="orders"):
        _transition(_locked(number), Status.FULFILLING, actor, "Being packed")
    return order_find(number=number)


def order_ship(
    *, number: str, actor: str, carrier: str = AUTO_CARRIER, tracking_number: str = "", strict: bool = False
) -> OrderInfo:
    """Ship everything in one go: what is not in a parcel yet goes in one (with `carrier` and `tracking_number`),
    and every parcel is handed to the carrier, each capturing its part of the payment through the outbox. An order
    shipped already is left as it is; with strict=True (the API) that, and an order with nothing left to ship,
    raise IllegalTransition. Raises IllegalTransition (not paid, cancelled), ShipmentError, OrderNotFound."""
    fulfilment.order_ship(number=number, actor=actor, carrier=carrier, tracking_number=tracking_number, strict=strict)
    return order_find(number=number)


def order_deliver(*, number: str, actor: str, strict: bool = False) -> OrderInfo:
    """Every parcel shipped is delivered. An order delivered already is left as it is; with strict=True (the API)
    that, and an order with no parcel on its way, raise IllegalTransition. Raises IllegalTransition (nothing
    shipped), OrderNotFound."""
    fulfilment.order_deliver(number=number, actor=actor, strict=strict)
    return order_find(number=number)


def order_refund(*, number: str, actor: str, note: str = "") -> OrderInfo:
    """Refund a shipped or delivered order in full: payments refunds all that was captured. (An order not yet
    shipped is cancelled instead, which voids its payment.) Raises IllegalTransition, OrderNotFound."""
    with atomic(module="orders"):
        order = _locked(number)
        before = order.amount_refunded
        order.amount_refunded = order.total  # all of it, whatever was refunded in part before
        _transition(order, Status.REFUNDED, actor, note or "Refunded", also=("amount_refunded",))
        publish(OrderRefunded(order_id=order.pk, number=number))
        if order.payment_id:
            publish(RefundPayment(payment_id=order.payment_id, idempotency_key=f"{number}:refund"))
            if order.total > before:
                publish(OrderRefundIssued(order_id=order.pk, number=number, amount=order.total - before,
                                          total_refunded=order.total, currency=order.currency))  # fmt: skip
    return order_find(number=number)


def orders_anonymise_customer(*, user_id: int) -> int:
    """The customer deleted their account: their orders stay (the shop's books need them) without anything that
    names them: no account, no email, no name, street or phone. Idempotent. Returns how many orders changed."""
    with atomic(module="orders"):
        changed = 0
        for order in Order.objects.select_for_update().filter(user_id=user_id):
            address = order.shipping_address or {}
            billing = order.billing_address or {}
            order.user_id = None
            order.email = f"deleted-customer-{order.pk}{ANONYMISED_DOMAIN}"
            order.shipping_address = {k: address[k] for k in ("country", "city", "postcode") if k in address}
            order.billing_address = {k: billing[k] for k in ("country", "city", "postcode") if k in billing}
            order.save(update_fields=["user_id", "email", "shipping_address", "billing_address", "updated_at"])
            StatusChange.objects.filter(order=order, actor=f"customer:{user_id}").update(actor="customer:deleted")
            changed += 1
    return changed


CONFIRMABLE = (Status.PAID, Status.FULFILLING, Status.SHIPPED, Status.DELIVERED)


def order_confirmation_claim(*, number: str) -> bool:
    """Claim the right to send an order's confirmation email: True exactly once per order, and only while the
    order stands (not if it was cancelled because its stock was gone)."""
    return bool(Order.objects.filter(number=number, confirmation_sent_at__isnull=True, status__in=CONFIRMABLE).update(
        confirmation_sent_at=timezone.now()
    ))  # fmt: skip


def orders_expire_unpaid(*, older_than_minutes: int | None = None) -> int:
    """Cancel orders left awaiting payment past the reservation time, releasing their stock."""
    minutes = older_than_minutes if older_than_minutes is not None else settings.SHOP_RESERVATION_MINUTES
    cutoff = timezone.now() - timedelta(minutes=minutes)
    numbers = list(
        Order.objects.filter(status=Status.PENDING_PAYMENT, created_at__lt=cutoff).values_list("number", flat=True)
    )
    for number in numbers:
        try:
            order_cancel(number=number, actor="system")
        except OrderError:
            logger.exception("could not expire order %s", number)
    return len(numbers)


__all__ = [
    "ALLOWED",
    "AUTO_CARRIER",
    "CANCELLABLE",
    "REASONS",
    "Discounts",
    "EmptyBasket",
    "HistoryLine",
    "HistoryOrder",
    "HistoryResult",
    "IllegalTransition",
    "OrderError",
    "OrderInfo",
    "OrderLineInfo",
    "OrderNotFound",
    "OrderStatus",
    "PaymentError",
    "PromotionApplied",
    "Quote",
    "QuoteLine",
    "ReturnError",
    "ReturnInfo",
    "ReturnLineInfo",
    "ReturnNotFound",
    "ShipmentError",
    "ShipmentInfo",
    "ShipmentLineInfo",
    "ShipmentNotFound",
    "Totals",
    "UnavailableItem",
    "VoucherApplied",
    "VoucherRefused",
    "carrier_name",
    "carrier_update",
    "order_attach_payment",
    "order_by_key",
    "order_cancel",
    "order_confirmation_claim",
    "order_current",
    "order_deliver",
    "order_discounts",
    "order_find",
    "order_get",
    "order_mark_paid",
    "order_payment_changed",
    "order_payment_failed",
    "order_payment_refunded",
    "order_payment_retry",
    "order_place",
    "order_quote",
    "order_quotes",
    "order_refund",
    "order_refund_amount",
    "order_ship",
    "order_start_fulfilment",
    "order_stock_lost",
    "order_totals",
    "orders_anonymise_customer",
    "orders_auto_fulfil",
    "orders_demo_history",
    "orders_expire_unpaid",
    "orders_for_customer",
    "return_receive",
    "return_refund",
    "return_request",
    "shipment_claim_email",
    "shipment_create",
    "shipment_deliver",
    "shipment_ship",
    "shipping_methods",
    "tracking_url_for",
    "voucher_normalise",
    "vouchers_demo_seed",
]
