"""The cart: in the session for visitors, in the database for signed-in customers; merged when a visitor signs in.

The operations take a CartStorage (SessionCartStorage(session) or DatabaseCartStorage(user_id)); the views pick
the one of the request (shop.cart_views.cart_storage).

A line holds a variant id, a quantity and the unit price the customer last saw. Prices and stock are read fresh
from catalog.services.variants_get every time, in one query whatever the number of lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Case, Sum, Value, When

from catalog.services import VariantInfo, variants_get
from kernel.db import atomic, unique
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

StoredLines = dict[int, tuple[int, Decimal]]  # variant id -> (quantity, price seen)


class CartStorage(Protocol):
    """Where a cart's lines are kept. The operations below work on any storage and hold the rules (stock caps,
    price-seen flags); a storage only reads and writes lines."""

    def lines(self, *, lock: bool = False) -> StoredLines:
        """Every line. lock: keep them locked until the transaction ends (for a merge)."""

    def quantity(self, variant_id: int) -> int | None:
        """The quantity of one line, None when the variant is not in the cart."""

    def count(self) -> int:
        """The number of items (the sum of the quantities)."""

    def add(self, lines: StoredLines) -> None:
        """New lines, for variants not in the cart yet."""

    def set(self, lines: StoredLines) -> None:
        """New quantities and prices seen of lines already in the cart."""

    def remove(self, variant_id: int) -> None: ...

    def clear(self) -> None: ...


class SessionCartStorage:
    """A visitor's cart, in their session: {"<variant id>": [quantity, "price seen"]}."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session

    def _stored(self) -> dict[str, list]:
        return self.session.get(SESSION_KEY, {})

    def lines(self, *, lock: bool = False) -> StoredLines:
        return {int(k): (int(v[0]), Decimal(v[1])) for k, v in self._stored().items()}

    def quantity(self, variant_id: int) -> int | None:
        entry = self._stored().get(str(variant_id))
        return int(entry[0]) if entry else None

    def count(self) -> int:
        return sum(int(v[0]) for v in self._stored().values())

    def add(self, lines: StoredLines) -> None:
        self.set(lines)

    def set(self, lines: StoredLines) -> None:
        if lines:
            stored = dict(self._stored())
            stored.update({str(vid): [quantity, str(price)] for vid, (quantity, price) in lines.items()})
            self.session[SESSION_KEY] = stored

    def remove(self, variant_id: int) -> None:
        stored = dict(self._stored())
        stored.pop(str(variant_id), None)
        self.session[SESSION_KEY] = stored

    def clear(self) -> None:
        self.session.pop(SESSION_KEY, None)


class DatabaseCartStorage:
    """A signed-in customer's cart, as CartLine rows of that user id."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    def _rows(self):
        return CartLine.objects.filter(user_id=self.user_id)

    def lines(self, *, lock: bool = False) -> StoredLines:
        rows = self._rows().select_for_update() if lock else self._rows()
        return {
            vid: (quantity, seen) for vid, quantity, seen in rows.values_list("variant_id", "quantity", "price_seen")
        }

    def quantity(self, variant_id: int) -> int | None:
        return unique(self._rows().filter(variant_id=variant_id).values_list("quantity", flat=True))

    def count(self) -> int:
        return self._rows().aggregate(n=Sum("quantity"))["n"] or 0

    def add(self, lines: StoredLines) -> None:
        if len(lines) == 1:
            ((vid, (quantity, price)),) = lines.items()
            CartLine.objects.create(user_id=self.user_id, variant_id=vid, quantity=quantity, price_seen=price)
        elif lines:
            CartLine.objects.bulk_create(
                CartLine(user_id=self.user_id, variant_id=vid, quantity=quantity, price_seen=price)
                for vid, (quantity, price) in lines.items()
            )

    def set(self, lines: StoredLines) -> None:
        """One UPDATE whatever the number of lines."""
        if len(lines) == 1:
            ((vid, (quantity, price)),) = lines.items()
            self._rows().filter(variant_id=vid).update(quantity=quantity, price_seen=price)
        elif lines:
            quantities = Case(*(When(variant_id=vid, then=Value(q)) for vid, (q, _) in lines.items()))
            prices = Case(
                *(When(variant_id=vid, then=Value(p)) for vid, (_, p) in lines.items()),
                output_field=CartLine._meta.get_field("price_seen"),
            )
            self._rows().filter(variant_id__in=list(lines)).update(quantity=quantities, price_seen=prices)

    def remove(self, variant_id: int) -> None:
        self._rows().filter(variant_id=variant_id).delete()

    def clear(self) -> None:
        self._rows().delete()


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
    """Said as a warning: the customer asked for more than there is."""
    name = f"{variant.product_title} ({variant.label})"
    if quantity >= MAX_LINE_QUANTITY and variant.available > quantity:
        return f"We reduced the quantity of {name} to {quantity}, the most one order line can hold."
    left = f"only {variant.available} {'is' if variant.available == 1 else 'are'} left"
    return f"We reduced the quantity of {name} to {quantity}, because {left}."


@atomic(module="shop")
def add(cart: CartStorage, *, variant_id: int, quantity: int) -> Change:
    variant = _variant(variant_id)
    if not variant.in_stock:
        raise CartError(f"{variant.product_title} ({variant.label}) is out of stock.")
    current = cart.quantity(variant_id)
    wanted = (current or 0) + quantity
    limit = min(variant.available, MAX_LINE_QUANTITY)
    final = min(wanted, limit)
    (cart.add if current is None else cart.set)({variant_id: (final, variant.price)})
    if final < wanted:
        return Change(final, _capped_message(variant, final), capped=True)
    return Change(final, f"Added {variant.product_title} ({variant.label}) to your cart.")


@atomic(module="shop")
def set_quantity(cart: CartStorage, *, variant_id: int, quantity: int) -> Change:
    current = cart.quantity(variant_id)
    if current is None:
        raise CartError("That item is not in your cart.")
    if quantity == 0:
        cart.remove(variant_id)
        return Change(0, "Removed from your cart.")
    variant = _variant(variant_id)
    final = min(quantity, variant.available) if variant.available > 0 else quantity
    cart.set({variant_id: (final, variant.price)})
    if final < quantity:
        return Change(final, _capped_message(variant, final), capped=True)
    return Change(final, "Cart updated.")


def remove(cart: CartStorage, *, variant_id: int) -> Change:
    if cart.quantity(variant_id) is None:
        raise CartError("That item is not in your cart.")
    cart.remove(variant_id)
    return Change(0, "Removed from your cart.")


def clear(cart: CartStorage) -> None:
    cart.clear()


def lines_for_order(cart: CartStorage) -> list[tuple[int, int]]:
    """(variant id, quantity) of every line in the cart."""
    return [(variant_id, quantity) for variant_id, (quantity, _) in cart.lines().items()]


def count(cart: CartStorage) -> int:
    return cart.count()


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


def view(cart: CartStorage) -> Cart:
    """The cart with fresh prices and stock. Price changes are flagged once: the new price is then remembered."""
    stored = cart.lines()
    variants = variants_get(variant_ids=stored)
    lines = tuple(
        Line(variant_id=vid, quantity=qty, variant=variants.get(vid), price_seen=seen)
        for vid, (qty, seen) in stored.items()
    )
    changed = {line.variant_id: (line.quantity, line.variant.price) for line in lines if line.price_changed}
    cart.set(changed)
    return Cart(lines=tuple(lines), currency=settings.SHOP_CURRENCY)


# ---------------------------------------------------------------- signing in


@atomic(module="shop")
def merge(*, source: CartStorage, target: CartStorage) -> list[str]:
    """Move the lines of one cart into another (a visitor's session cart into their account's, on sign-in):
    quantities add up, capped at what is in stock; the source is emptied. Returns the messages to show (one per
    line that was capped)."""
    incoming = {vid: quantity for vid, (quantity, _) in source.lines().items()}
    if not incoming:
        return []
    source.clear()
    existing = target.lines(lock=True)
    variants = variants_get(variant_ids=incoming)
    notes: list[str] = []
    to_add: StoredLines = {}
    to_set: StoredLines = {}
    for variant_id, quantity in incoming.items():
        variant = variants.get(variant_id)
        if variant is None or not variant.in_stock:
            continue
        line = existing.get(variant_id)
        wanted = quantity + (line[0] if line else 0)
        final = min(wanted, variant.available, MAX_LINE_QUANTITY)
        if final < wanted:
            notes.append(_capped_message(variant, final))
        (to_set if line else to_add)[variant_id] = (final, variant.price)
    target.set(to_set)
    target.add(to_add)
    return notes
