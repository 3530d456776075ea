from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from accounts.services import country_name as _country_name

register = template.Library()

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}
_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@register.filter
def money(amount: Decimal | None, currency: str = "EUR") -> str:
    """19.9, "EUR" -> "€19.90"."""
    if amount is None:
        return ""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    decimals = 0 if currency == "JPY" else 2
    return f"{symbol}{amount:,.{decimals}f}"


@register.filter
def country_name(code: str | None) -> str:
    """ "DE" -> "Germany" (the countries the shop delivers to; another code is shown as it is)."""
    return _country_name(code)


@register.filter
def address_lines(address: Any) -> tuple[str, ...]:
    """An address (an order's dict, or an AddressInfo) as the lines of a label: name, street, line 2,
    "postcode city", region, the country's name. Empty parts are left out; the phone is not part of it.

        <address>{% for line in order.shipping_address|address_lines %}{{ line }}<br>{% endfor %}</address>
    """
    if not address:
        return ()

    def get(name: str) -> str:
        value = address.get(name) if isinstance(address, dict) else getattr(address, name, "")
        return str(value or "").strip()

    town = " ".join(p for p in (get("postal_code") or get("postcode"), get("city")) if p)
    parts = (get("full_name"), get("line1"), get("line2"), town, get("region"), _country_name(get("country")))
    return tuple(p for p in parts if p)


@register.filter
def ld_json(value: Any) -> SafeString:
    """JSON for a <script type="application/ld+json"> block, safe against </script> in the data."""
    return mark_safe(json.dumps(value, ensure_ascii=False, default=str).translate(_JSON_ESCAPES))  # noqa: S308


@register.simple_tag
def availability(available: int) -> str:
    if available <= 0:
        return "Out of stock"
    if available <= 5:
        return f"Only {available} left"
    return "In stock"
