from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

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


_SLUG = "slug-stand-in"
_product_pattern: dict[tuple[str, Any], tuple[str, str]] = {}


@register.filter
def product_url(slug: str) -> str:
    """The product page's address, as {% url 'shop:product' slug %} gives it: the URL pattern is reversed once (per
    script prefix and URLconf), then each card's slug is put in (a listing has 24 to 48 cards, a reverse() each
    was a measurable part of the page). Slugs are URL-safe, so nothing needs quoting."""
    key = (get_script_prefix(), get_urlconf())
    pattern = _product_pattern.get(key)
    if pattern is None:
        before, after = reverse("shop:product", args=[_SLUG]).split(_SLUG)
        pattern = _product_pattern[key] = (before, after)
    return f"{pattern[0]}{slug}{pattern[1]}"


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
