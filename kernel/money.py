"""Money: a Decimal amount with an explicit ISO 4217 currency. Never a float.

This is the one place amounts are validated and rounded. Rounding is half-up (2.005 EUR is 2.01 EUR) to the
currency's minor unit (cents; whole yen; thousandths of a dinar). Use `round_money(amount, currency)` where a
plain Decimal is wanted and `Money(...).rounded()` where a Money is.
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor units for the currencies the shop is likely to meet; everything else has two.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def minor_units(currency: str) -> int:
    """Digits after the decimal point in the currency's smallest unit: 2 for EUR, 0 for JPY, 3 for BHD."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal | int | str, currency: str) -> Decimal:
    """`amount` validated (no float, finite, an ISO 4217 code) and rounded half-up to the currency's minor unit.

    Raises TypeError for a float and ValueError for anything else that is not an amount of money.
    """
    return Money(amount, currency).rounded().amount


@dataclasses.dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise TypeError("Money takes a Decimal, int or str amount, never a float")
        try:
            amount = Decimal(self.amount)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"{self.amount!r} is not an amount of money") from None
        if not amount.is_finite():
            raise ValueError("an amount of money must be finite")
        if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isalpha()):
            raise ValueError(f"{self.currency!r} is not an ISO 4217 currency code")
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "currency", self.currency.upper())

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, float | Money):
            raise TypeError("multiply Money by an int or a Decimal")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def rounded(self) -> Money:
        """Rounded half-up to the currency's minor unit (cents, or whole yen)."""
        exponent = Decimal(1).scaleb(-minor_units(self.currency))
        try:
            amount = self.amount.quantize(exponent, rounding=ROUND_HALF_UP)
        except InvalidOperation:  # more digits than Decimal's precision holds
            raise ValueError(f"{self.amount!r} is too large an amount of money") from None
        return Money(amount, self.currency)

    def __str__(self) -> str:
        return f"{self.rounded().amount:,} {self.currency}"
