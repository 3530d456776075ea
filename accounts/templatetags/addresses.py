"""Template filters for addresses, a builtin of every template (config.settings TEMPLATES): the shop's pages and
orders' emails render addresses alike, with the country's name from accounts' list of countries."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.services import country_name as _country_name

register = template.Library()


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
