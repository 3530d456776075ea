"""Vouchers (codes a customer types) and automatic promotions (no code): how they price a basket, and how a
voucher's use is recorded and given back. Private to orders; orders.services is its public face.

The rules, as the shop applies them:

- A code is trimmed and case-insensitive ("  welcome10 " is WELCOME10).
- A voucher or promotion applies to the goods of its categories (a category includes its subcategories, read through
  catalog.services.product_categories) and its products; naming neither, it applies to every item.
- Percentage: that percent of the goods it applies to, rounded to the cent. Fixed amount: that amount, at most the
  goods it applies to. Free delivery (vouchers only): the delivery charge of the method the customer chose is
  waived, whichever it is.
- Automatic promotions run between starts_at and ends_at. When several would apply, the one taking most off the
  basket applies (one promotion per order, ties to the older one). A voucher stacks on top of it: it is worked out
  on the prices after the promotion, and its minimum spend is on the goods it applies to, after the promotion.
  The free delivery threshold (SHOP_FREE_SHIPPING_ABOVE) is on the subtotal before any discount.
- Validity window: starts_at <= now < ends_at, either end open when empty.
- Limits: usage_limit is the uses in all, per_customer_limit the uses per customer: per account (user_id) for a
  signed-in customer, per normalised email (trimmed, lower case) for a guest. A use given back does not count.
- Each discount is allocated to the lines in proportion to what they cost (after the discounts before it), to the
  cent, the leftover cents to the lines with the largest remainders; an order line keeps its share (discount), so
  a return refunds what the line actually cost, and a fully returned order refunds exactly its total.
- The quote checks everything (and says what is wrong, for the cart and the checkout), but the word that counts is
  the one given in the transaction that creates the order (reserve_use): under a row lock on the voucher
  (SELECT ... FOR UPDATE), the total and the customer's uses are counted again, the use is recorded and
  times_used goes up, in the same transaction as the order, so the use exists if and only if the order does. Twenty
  customers racing for the last use give one order with the voucher and nineteen "This code has been used up".
  A CHECK constraint keeps times_used within usage_limit whatever the code does.
- Give back: when an order is cancelled (by the customer or staff, expired unpaid, sold out while paying) its use
  is given back in the cancelling transaction (given_back_at set, times_used down by one), so the customer may use
  the code again. An order refunded after it shipped keeps its use: the customer had the goods.
- A free delivery voucher on an order whose delivery is free already applies but takes nothing off; it is not
  recorded as used (the customer keeps it for another order).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from catalog.services import product_categories
from kernel.db import db_for_module
from kernel.money import minor_units, round_money
from orders.models import Discount, Order, Promotion, Voucher, VoucherUse
from orders.state import OrderError

logger = logging.getLogger(__name__)
MAX_CODE_LENGTH = 40
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


class VoucherRefused(OrderError):
    """The code cannot be used for this basket, now, by this customer. The message is for the customer; `reason`
    is one of unknown, not_yet_valid, expired, used_up, customer_limit, minimum_spend, not_applicable, changed."""

    def __init__(self, message: str, *, reason: str, code: str = "") -> None:
        super().__init__(message, field="voucher_code")
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class VoucherApplied:
    code: str
    kind: str
    description: str  # "10 % off", "€5.00 off", "Free delivery"
    discount: Decimal  # off the goods
    shipping_discount: Decimal  # off the delivery charge

    @property
    def amount(self) -> Decimal:
        return self.discount + self.shipping_discount


@dataclass(frozen=True)
class PromotionApplied:
    id: int
    name: str
    discount: Decimal


@dataclass(frozen=True)
class Pricing:
    line_discounts: tuple[Decimal, ...]  # per line, in the basket's order: promotion and voucher together
    promotion: PromotionApplied | None
    voucher: VoucherApplied | None
    voucher_error: VoucherRefused | None
    shipping_discount: Decimal

    @property
    def discount(self) -> Decimal:
        return sum(self.line_discounts, Decimal(0))


def normalise_code(raw: str | None) -> str:
    return (raw or "").strip().upper()


def normalise_email(raw: str | None) -> str:
    return (raw or "").strip().lower()


def format_money(amount: Decimal, currency: str) -> str:
    decimals = minor_units(currency)
    return f"{SYMBOLS.get(currency, currency + ' ')}{amount:,.{decimals}f}"


def describe(kind: str, value: Decimal, currency: str) -> str:
    if kind == Discount.FREE_SHIPPING:
        return "Free delivery"
    if kind == Discount.PERCENTAGE:
        return f"{value.normalize():f}\u00a0% off"  # no line break inside "10 %"
    return f"{format_money(value, currency)} off"


# ---------------------------------------------------------------- working out discounts


def allocate(amount: Decimal, weights: Sequence[Decimal], currency: str) -> tuple[Decimal, ...]:
    """Split amount across weights in proportion, to the minor unit, summing exactly to amount (largest
    remainders get the leftover units). amount <= sum(weights)."""
    total = sum(weights, Decimal(0))
    if amount <= 0 or total <= 0:
        return tuple(Decimal(0) for _ in weights)
    unit = Decimal(1).scaleb(-minor_units(currency))
    exact = [amount * w / total for w in weights]
    shares = [e.quantize(unit, rounding=ROUND_DOWN) for e in exact]
    left = int((amount - sum(shares, Decimal(0))) / unit)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), -weights[i], i))
    for i in by_remainder[:left]:
        shares[i] += unit
    return tuple(shares)


def _applies(category_ids: list, product_ids: list, product_id: int, categories: dict[int, tuple[int, ...]]) -> bool:
    if not category_ids and not product_ids:
        return True
    if product_id in product_ids:
        return True
    return bool(set(categories.get(product_id, ())) & set(category_ids))


def _amount_off(kind: str, value: Decimal, base: Decimal, currency: str) -> Decimal:
    if kind == Discount.PERCENTAGE:
        return min(round_money(base * value / 100, currency), base)
    if kind == Discount.FIXED:
        return min(round_money(value, currency), base)
    return Decimal(0)


def _valid_now(rule: Voucher, now: datetime) -> VoucherRefused | None:
    code = rule.code
    if rule.starts_at and now < rule.starts_at:
        when = timezone.localtime(rule.starts_at).strftime("%-d %B %Y, %H:%M")
        return VoucherRefused(f"{code} is not valid yet: it can be used from {when}.", reason="not_yet_valid",
                              code=code)  # fmt: skip
    if rule.ends_at and now >= rule.ends_at:
        when = timezone.localtime(rule.ends_at).strftime("%-d %B %Y")
        return VoucherRefused(f"{code} has expired (it ran until {when}).", reason="expired", code=code)
    return None


def _uses_by(voucher_id: int, user_id: int | None, email: str) -> int:
    uses = VoucherUse.objects.filter(voucher_id=voucher_id, given_back_at__isnull=True)
    if user_id is not None:
        return uses.filter(user_id=user_id).count()
    return uses.filter(email=email).count()


def _limits(voucher: Voucher, user_id: int | None, email: str) -> VoucherRefused | None:
    if voucher.usage_limit is not None and voucher.times_used >= voucher.usage_limit:
        return VoucherRefused("This code has been used up.", reason="used_up", code=voucher.code)
    limit = voucher.per_customer_limit
    if limit is not None and (user_id is not None or email) and _uses_by(voucher.pk, user_id, email) >= limit:
        times = "once" if limit == 1 else f"{limit} times"
        return VoucherRefused(f"{voucher.code} can be used {times} per customer, and you have used it already.",
                              reason="customer_limit", code=voucher.code)  # fmt: skip
    return None


PROMOTIONS_CACHE_KEY = "orders:promotions:v1"
PROMOTIONS_CACHE_SECONDS = 300


def active_promotions(now: datetime) -> list[Promotion]:
    """The promotions running now. Every quote asks (the cart, each checkout page, placing), so the ones not ended
    are cached (PROMOTIONS_CACHE_SECONDS; dropped whenever a promotion is saved or deleted, see forget_promotions)
    and filtered by time here."""
    try:
        cached = cache.get(PROMOTIONS_CACHE_KEY)
    except Exception:  # cache unreachable: read the database instead of failing the page
        logger.warning("cache unavailable; reading promotions from the database", exc_info=True)
        cached = None
    if cached is None:
        cached = list(Promotion.objects.filter(is_active=True, ends_at__gt=now).order_by("starts_at", "id"))
        with contextlib.suppress(Exception):
            cache.set(PROMOTIONS_CACHE_KEY, cached, timeout=PROMOTIONS_CACHE_SECONDS)
    return [p for p in cached if p.starts_at <= now < p.ends_at]


@receiver([post_save, post_delete], sender=Promotion, dispatch_uid="orders.forget_promotions")
def forget_promotions(**kwargs) -> None:
    """A promotion changed: the next quote reads them again (now, and again after the commit)."""
    transaction.on_commit(lambda: cache.delete(PROMOTIONS_CACHE_KEY), using=db_for_module("orders"))
    with contextlib.suppress(Exception):
        cache.delete(PROMOTIONS_CACHE_KEY)


def price(
    *,
    product_ids: Sequence[int],
    line_totals: Sequence[Decimal],
    currency: str,
    shipping_price: Decimal,
    voucher_code: str = "",
    user_id: int | None = None,
    email: str = "",
    now: datetime | None = None,
) -> Pricing:
    """The discounts of a basket (lines given as product ids and totals, in order). A constant number of queries:
    the promotions running, the voucher, the customer's uses of it, and the products' categories when a rule
    names categories."""
    now = now or timezone.now()
    code = normalise_code(voucher_code)
    email = normalise_email(email)
    promotions = active_promotions(now)
    voucher = Voucher.objects.filter(code=code).first() if code and len(code) <= MAX_CODE_LENGTH else None
    rules = [*promotions, *([voucher] if voucher else [])]
    categories = product_categories(product_ids=set(product_ids)) if any(r.category_ids for r in rules) else {}
    n = len(line_totals)
    zero = Decimal(0)

    # the one promotion that takes most off
    best: tuple[Decimal, Promotion, tuple[Decimal, ...]] | None = None
    for promo in promotions:
        mask = [_applies(promo.category_ids, promo.product_ids, p, categories) for p in product_ids]
        base = sum((t for t, m in zip(line_totals, mask, strict=True) if m), zero)
        off = _amount_off(promo.kind, promo.value, base, currency)
        if off > 0 and (best is None or off > best[0]):
            weights = [t if m else zero for t, m in zip(line_totals, mask, strict=True)]
            best = (off, promo, allocate(off, weights, currency))
    promo_shares = best[2] if best else tuple(zero for _ in range(n))
    promotion = PromotionApplied(best[1].pk, best[1].name, best[0]) if best else None
    after_promo = [t - s for t, s in zip(line_totals, promo_shares, strict=True)]

    applied, error, voucher_shares, shipping_discount = None, None, tuple(zero for _ in range(n)), zero
    if code:
        try:
            applied, voucher_shares, shipping_discount = _voucher(
                voucher, code, product_ids, after_promo, categories, currency, shipping_price, user_id, email, now
            )
        except VoucherRefused as exc:
            error = exc
    discounts = tuple(p + v for p, v in zip(promo_shares, voucher_shares, strict=True))
    return Pricing(discounts, promotion, applied, error, shipping_discount)


def _voucher(voucher: Voucher | None, code: str, product_ids: Sequence[int], after_promo: list[Decimal],
             categories: dict[int, tuple[int, ...]], currency: str, shipping_price: Decimal, user_id: int | None,
             email: str, now: datetime) -> tuple[VoucherApplied, tuple[Decimal, ...], Decimal]:  # fmt: skip
    if voucher is None or not voucher.is_active:
        raise VoucherRefused(f"“{code[:MAX_CODE_LENGTH]}” is not a valid voucher code. Check it and try again.",
                             reason="unknown", code=code[:MAX_CODE_LENGTH])  # fmt: skip
    problem = _valid_now(voucher, now) or _limits(voucher, user_id, email)
    if problem:
        raise problem
    zero = Decimal(0)
    mask = [_applies(voucher.category_ids, voucher.product_ids, p, categories) for p in product_ids]
    base = sum((t for t, m in zip(after_promo, mask, strict=True) if m), zero)
    if not any(mask) or base <= 0:
        raise VoucherRefused(f"{voucher.code} does not apply to the items in your cart.", reason="not_applicable",
                             code=voucher.code)  # fmt: skip
    if base < voucher.minimum_spend:
        missing = format_money(voucher.minimum_spend - base, currency)
        where = " on the items it applies to" if voucher.category_ids or voucher.product_ids else ""
        raise VoucherRefused(f"Spend {missing} more{where} to use {voucher.code}.", reason="minimum_spend",
                             code=voucher.code)  # fmt: skip
    off = _amount_off(voucher.kind, voucher.value, base, currency)
    shares = allocate(off, [t if m else zero for t, m in zip(after_promo, mask, strict=True)], currency)
    shipping_off = shipping_price if voucher.kind == Discount.FREE_SHIPPING else zero
    if voucher.kind == Discount.FREE_SHIPPING and shipping_price <= 0:
        description = "Free delivery (delivery is free already)"
    else:
        description = describe(voucher.kind, voucher.value, currency)
    return VoucherApplied(voucher.code, voucher.kind, description, off, shipping_off), shares, shipping_off


# ---------------------------------------------------------------- recording a use (inside the order's transaction)


def reserve_use(*, order: Order, applied: VoucherApplied, user_id: int | None, email: str) -> None:
    """Record the order's use of its voucher, in the transaction creating the order, under the voucher's row lock:
    the limits are counted again there. Raises VoucherRefused (the transaction then rolls back, order and all)."""
    voucher = Voucher.objects.select_for_update().filter(code=applied.code).first()
    if voucher is None or not voucher.is_active:
        raise VoucherRefused(f"{applied.code} is no longer valid.", reason="unknown", code=applied.code)
    if voucher.kind != applied.kind:
        raise VoucherRefused(f"{applied.code} has changed. Please review your order again.", reason="changed",
                             code=applied.code)  # fmt: skip
    problem = _valid_now(voucher, timezone.now()) or _limits(voucher, user_id, normalise_email(email))
    if problem:
        raise problem
    VoucherUse.objects.create(voucher=voucher, order=order, user_id=user_id, email=normalise_email(email),
                              amount=applied.amount)  # fmt: skip
    Voucher.objects.filter(pk=voucher.pk).update(times_used=F("times_used") + 1)


def give_back(order: Order) -> bool:
    """The order will not go ahead (cancelled, expired unpaid): its use of a voucher no longer counts. Idempotent.
    Call inside the orders transaction that cancels it. Whether a use was given back."""
    use = VoucherUse.objects.select_for_update().filter(order=order, given_back_at__isnull=True).first()
    if use is None:
        return False
    use.given_back_at = timezone.now()
    use.save(update_fields=["given_back_at"])
    Voucher.objects.filter(pk=use.voucher_id, times_used__gt=0).update(times_used=F("times_used") - 1)
    return True


# ---------------------------------------------------------------- what a line cost, for refunds and captures


def paid_for(*, line_total: Decimal, discount: Decimal, quantity: int, before: int, count: int, currency: str
             ) -> Decimal:  # fmt: skip
    """What `count` units of a line cost the customer after its discount, when `before` of its units were counted
    already (refunded, say): the shares of all its units add up exactly to line_total - discount."""
    paid = line_total - discount
    if quantity <= 0:
        return Decimal(0)
    upto = round_money(paid * (before + count) / quantity, currency)
    return upto - round_money(paid * before / quantity, currency)


# ---------------------------------------------------------------- demo shop


def demo_seed(*, category_id: int | None = None, category_name: str = "", now: datetime | None = None) -> list[str]:
    """WELCOME10 (10 % off from €30, once per customer), FREESHIP (free delivery, 1,000 uses) and a promotion
    running for a week (10 % off the category given), unless one is running. Idempotent: existing codes are left
    alone. Returns what it made."""
    now = now or timezone.now()
    made = []
    for code, fields in (
        ("WELCOME10", {"name": "Welcome offer", "kind": Discount.PERCENTAGE, "value": Decimal(10),
                       "minimum_spend": Decimal(30), "per_customer_limit": 1}),
        ("FREESHIP", {"name": "Free delivery", "kind": Discount.FREE_SHIPPING, "usage_limit": 1000,
                      "per_customer_limit": None}),
    ):  # fmt: skip
        if Voucher.objects.get_or_create(code=code, defaults=fields)[1]:
            made.append(code)
    if category_id is not None and not Promotion.objects.filter(is_active=True, ends_at__gt=now).exists():
        Promotion.objects.create(name=f"{category_name or 'Promotion'} week: 10\u00a0% off", kind=Discount.PERCENTAGE,
                                 value=Decimal(10), starts_at=now, ends_at=now + timedelta(days=7),
                                 category_ids=[category_id])  # fmt: skip
        made.append("promotion")
    return made
