"""The cart: in the session for visitors, in the database for signed-in customers; merged when a visitor signs in.

A line holds a variant id, a quantity and the unit price the customer last saw. Prices and stock are read fresh
from catalog.services.variants_get every time, in one query whatever the number of lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest

from catalog.services import VariantInfo, variants_get
from shop.models import MAX_LINE_QUANTITY, CartLine

SESSION_KEY = "cart"


class CartError(Exception):
    """Something the customer asked of the cart cannot be done; the message says why."""


def parse_quantity(raw: object, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 4 or not low <= int(text) <= MAX_LINE_QUANTITY:
        raise CartError(f"Enter a quantity from {low} to {MAX_LINE_QUANTITY}.")
    return int(text)


def parse_variant(raw: object) -> int:
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 18:
        raise CartError("Choose an option of the product first.")
    return int(text)


# ---------------------------------------------------------------- storage


def _lines(request: HttpRequest) -> dict[int, tuple[int, Decimal]]:
    """variant id -> (quantity, price seen)"""
    if request.user.is_authenticated:
        return {
            line.variant_id: (line.quantity, line.price_seen) for line in CartLine.objects.filter(user=request.user)
        }
    stored = request.session.get(SESSION_KEY, {})
    return {int(k): (int(v[0]), Decimal(v[1])) for k, v in stored.items()}


def _store(request: HttpRequest, variant_id: int, quantity: int, price_seen: Decimal, *, existing: bool) -> None:
    if request.user.is_authenticated:
        if quantity == 0:
            CartLine.objects.filter(user=request.user, variant_id=variant_id).delete()
        elif existing:
            CartLine.objects.filter(user=request.user, variant_id=variant_id).update(
                quantity=quantity, price_seen=price_seen
            )
        else:
            CartLine.objects.create(user=request.user, variant_id=variant_id, quantity=quantity, price_seen=price_seen)
        return
    stored = dict(request.session.get(SESSION_KEY, {}))
    if quantity == 0:
        stored.pop(str(variant_id), None)
    else:
        stored[str(variant_id)] = [quantity, str(price_seen)]
    request.session[SESSION_KEY] = stored


def _line_quantity(request: HttpRequest, variant_id: int) -> int | None:
    if request.user.is_authenticated:
        return (
            CartLine.objects.filter(user=request.user, variant_id=variant_id).values_list("quantity", flat=True).first()
        )
    entry = request.session.get(SESSION_KEY, {}).get(str(variant_id))
    return int(entry[0]) if entry else None


def _variant(variant_id: int) -> VariantInfo:
    variant = variants_get(variant_ids=[variant_id]).get(variant_id)
    if variant is None or not variant.is_active:
        raise CartError("That product is not on sale any more.")
    return variant


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Change:
    quantity: int  # now in the cart
    message: str
    capped: bool = False


def _capped_message(variant: VariantInfo, quantity: int) -> str:
    name = f"{variant.product_title} ({variant.label})"
    return f"Only {variant.available} of {name} in stock: your cart now holds {quantity}."


@transaction.atomic
def add(request: HttpRequest, *, variant_id: int, quantity: int) -> Change:
    variant = _variant(variant_id)
    if not variant.in_stock:
        raise CartError(f"{variant.product_title} ({variant.label}) is out of stock.")
    current = _line_quantity(request, variant_id)
    wanted = (current or 0) + quantity
    limit = min(variant.available, MAX_LINE_QUANTITY)
    final = min(wanted, limit)
    _store(request, variant_id, final, variant.price, existing=current is not None)
    if final < wanted:
        return Change(final, _capped_message(variant, final), capped=True)
    return Change(final, f"Added {variant.product_title} ({variant.label}) to your cart.")


@transaction.atomic
def set_quantity(request: HttpRequest, *, variant_id: int, quantity: int) -> Change:
    current = _line_quantity(request, variant_id)
    if current is None:
        raise CartError("That item is not in your cart.")
    if quantity == 0:
        _store(request, variant_id, 0, Decimal(0), existing=True)
        return Change(0, "Removed from your cart.")
    variant = _variant(variant_id)
    final = min(quantity, variant.available) if variant.available > 0 else quantity
    _store(request, variant_id, final, variant.price, existing=True)
    if final < quantity:
        return Change(final, _capped_message(variant, final), capped=True)
    return Change(final, "Cart updated.")


def remove(request: HttpRequest, *, variant_id: int) -> Change:
    if _line_quantity(request, variant_id) is None:
        raise CartError("That item is not in your cart.")
    _store(request, variant_id, 0, Decimal(0), existing=True)
    return Change(0, "Removed from your cart.")


def clear(request: HttpRequest) -> None:
    if request.user.is_authenticated:
        CartLine.objects.filter(user=request.user).delete()
    request.session.pop(SESSION_KEY, None)


def lines_for_order(request: HttpRequest) -> list[tuple[int, int]]:
    """(variant id, quantity) of every line in the cart."""
    return [(variant_id, quantity) for variant_id, (quantity, _) in _lines(request).items()]


def count(request: HttpRequest) -> int:
    if request.user.is_authenticated:
        return CartLine.objects.filter(user=request.user).aggregate(n=Sum("quantity"))["n"] or 0
    return sum(int(v[0]) for v in request.session.get(SESSION_KEY, {}).values())


# ---------------------------------------------------------------- the cart page


@dataclass(frozen=True)
class Line:
    variant_id: int
    quantity: int
    variant: VariantInfo | None
    price_seen: Decimal

    @property
    def available(self) -> bool:
        return self.variant is not None and self.variant.is_active

    @property
    def unit_price(self) -> Decimal | None:
        return self.variant.price if self.variant else None

    @property
    def price_changed(self) -> bool:
        return self.available and self.variant.price != self.price_seen

    @property
    def short_of_stock(self) -> bool:
        return self.available and self.quantity > self.variant.available

    @property
    def total(self) -> Decimal:
        return self.variant.price * self.quantity if self.available and not self.short_of_stock else Decimal(0)


@dataclass(frozen=True)
class Cart:
    lines: tuple[Line, ...]
    currency: str

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def has_problems(self) -> bool:
        return any(not line.available or line.short_of_stock for line in self.lines)


def view(request: HttpRequest) -> Cart:
    """The cart with fresh prices and stock. Price changes are flagged once: the new price is then remembered."""
    stored = _lines(request)
    variants = variants_get(variant_ids=stored)
    lines = tuple(
        Line(variant_id=vid, quantity=qty, variant=variants.get(vid), price_seen=seen)
        for vid, (qty, seen) in stored.items()
    )
    changed = [line for line in lines if line.price_changed]
    if changed:
        if request.user.is_authenticated:
            rows = {r.variant_id: r for r in CartLine.objects.filter(user=request.user)}
            for line in changed:
                rows[line.variant_id].price_seen = line.variant.price
            CartLine.objects.bulk_update([rows[line.variant_id] for line in changed], ["price_seen"])
        else:
            session_cart = dict(request.session.get(SESSION_KEY, {}))
            for line in changed:
                session_cart[str(line.variant_id)] = [line.quantity, str(line.variant.price)]
            request.session[SESSION_KEY] = session_cart
    return Cart(lines=lines, currency=settings.SHOP_CURRENCY)


# ---------------------------------------------------------------- signing in


@transaction.atomic
def merge_into_account(request: HttpRequest, user) -> list[str]:
    """Move the visitor's session cart into the account's cart: quantities add up, capped at what is in stock.
    Returns the messages to show (one per line that was capped)."""
    session_cart = request.session.pop(SESSION_KEY, None)
    if not session_cart:
        return []
    incoming = {int(k): int(v[0]) for k, v in session_cart.items()}
    existing = {line.variant_id: line for line in CartLine.objects.select_for_update().filter(user=user)}
    variants = variants_get(variant_ids=incoming)
    notes, to_create, to_update = [], [], []
    for variant_id, quantity in incoming.items():
        variant = variants.get(variant_id)
        if variant is None or not variant.in_stock:
            continue
        line = existing.get(variant_id)
        wanted = quantity + (line.quantity if line else 0)
        final = min(wanted, variant.available, MAX_LINE_QUANTITY)
        if final < wanted:
            notes.append(_capped_message(variant, final))
        if line:
            line.quantity, line.price_seen = final, variant.price
            to_update.append(line)
        else:
            to_create.append(CartLine(user=user, variant_id=variant_id, quantity=final, price_seen=variant.price))
    CartLine.objects.bulk_update(to_update, ["quantity", "price_seen"])
    CartLine.objects.bulk_create(to_create)
    return notes
