"""Checks the editing services share (catalog.categories, catalog.products): what a caller sends is refused with
CatalogInvalid naming the argument, before the database would refuse it less clearly. Private to catalog."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import Model

from catalog.data import UNSET

OPTION_NAME_MAX = 60  # ProductOptionValue.name (and its key)
OPTION_VALUE_MAX = 120  # ProductOptionValue.value
PRICE_MAX = Decimal("9999999999.99")  # 12 digits, 2 of them decimals


class Errors:
    """Collects what is wrong, by argument (and, inside a list, by index), for one CatalogInvalid."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}

    def add(self, name: str, message: str, *, index: int | None = None, within: str | None = None) -> None:
        """within/index: the problem is in item `index` of the list argument `within` (its field `name`)."""
        if within is None:
            self.found.setdefault(name, []).append(message)
        else:
            self.found.setdefault(within, {}).setdefault(index, {}).setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.found)


def check_text(errors: Errors, model: type[Model], values: dict[str, Any], **where: Any) -> None:
    """Text fields of `model` given in `values` (UNSET: not given): required ones not blank, none too long."""
    for name, value in values.items():
        if value is UNSET:
            continue
        field = model._meta.get_field(name)
        if not isinstance(value, str):
            errors.add(name, "Must be text.", **where)
        elif not value.strip() and not field.blank:
            errors.add(name, "Must not be blank.", **where)
        elif field.max_length and len(value) > field.max_length:
            errors.add(name, f"At most {field.max_length} characters.", **where)


def check_slug(errors: Errors, slug: str, **where: Any) -> None:
    try:
        validate_slug(slug)
    except ValidationError:
        errors.add("slug", "Letters, numbers, underscores or hyphens only.", **where)


def check_count(errors: Errors, name: str, value: Any, **where: Any) -> None:
    """A non-negative whole number (positions, weights, popularity, stock) that fits the database's integer."""
    if value is UNSET:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2_147_483_647:
        errors.add(name, "Must be a whole number, 0 or more.", **where)


def check_price(errors: Errors, name: str, value: Any, **where: Any) -> None:
    if value is UNSET or value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > PRICE_MAX:
        errors.add(name, "Must be an amount of 0 or more (at most 2 decimals).", **where)
    elif value != value.quantize(Decimal("0.01")):
        errors.add(name, "At most 2 decimals.", **where)


def check_options(errors: Errors, options: Iterable[tuple[str, str]], **where: Any) -> None:
    names: set[str] = set()
    for name, value in options:
        if not isinstance(name, str) or not isinstance(value, str) or not name.strip() or not value.strip():
            errors.add("options", "Option names and values must be text, not blank.", **where)
        elif len(name) > OPTION_NAME_MAX or len(value) > OPTION_VALUE_MAX:
            errors.add(
                "options",
                f"Option names have at most {OPTION_NAME_MAX} characters, values at most {OPTION_VALUE_MAX}.",
                **where,
            )
        elif name.lower() in names:
            errors.add("options", f"The option {name!r} is given twice.", **where)
        else:
            names.add(name.lower())


def check_attributes(errors: Errors, attributes: Any) -> None:
    if attributes is UNSET:
        return
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        errors.add("attributes", 'An object of text values, e.g. {"Material": "Cotton"}.')
