"""Info pages (delivery, returns, terms, privacy, contact): the placeholders staff may use in a page's HTML, filled
from the settings and the orders module's public face when the page is shown. Private to shop."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe

from orders.services import shipping_methods
from shop.templatetags.shop_tags import money

# The pages every installation has (the migration 0003_info_pages creates them), in the footer's order.
REQUIRED_PAGES = (
    ("delivery", "Delivery"),
    ("returns", "Returns"),
    ("terms", "Terms"),
    ("privacy", "Privacy"),
    ("contact", "Contact"),
)
REQUIRED_SLUGS = frozenset(slug for slug, _ in REQUIRED_PAGES)


def contact_email() -> str:
    """The address customers write to: SHOP_CONTACT_EMAIL, else the address the shop's emails come from."""
    if settings.SHOP_CONTACT_EMAIL:
        return settings.SHOP_CONTACT_EMAIL
    sender = settings.DEFAULT_FROM_EMAIL
    return sender.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in sender else sender.strip()


def _shipping_table() -> str:
    """The delivery methods as checkout offers them: the price below the free-delivery threshold, and whether
    the method is free from it."""
    threshold = Decimal(settings.SHOP_FREE_SHIPPING_ABOVE)
    currency = settings.SHOP_CURRENCY
    above = {m.code: m.price for m in shipping_methods(subtotal=threshold)}
    rows = []
    for method in shipping_methods(subtotal=Decimal(0)):
        price = money(method.price, currency) if method.price else "Free"
        if method.price and not above[method.code]:
            price += f", free on orders from {money(threshold, currency)}"
        cells = f'<th scope="row">{escape(method.name)}</th><td>{escape(method.days)}</td><td>{price}</td>'
        rows.append(f"<tr>{cells}</tr>")
    head = '<tr><th scope="col">Method</th><th scope="col">Delivery time</th><th scope="col">Price</th></tr>'
    return f'<table class="info-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def placeholders() -> dict[str, str]:
    """The values of the placeholders, as HTML."""
    rate = Decimal(settings.SHOP_TAX_RATE) * 100
    return {
        "{shop_name}": escape(settings.SHOP_NAME),
        "{contact_email}": (f'<a href="mailto:{escape(contact_email())}">{escape(contact_email())}</a>'),
        "{shipping_methods}": _shipping_table(),
        "{free_delivery_above}": money(Decimal(settings.SHOP_FREE_SHIPPING_ABOVE), settings.SHOP_CURRENCY),
        "{return_days}": str(settings.ORDERS_RETURN_DAYS),
        "{vat_rate}": f"{rate.normalize():f} %",
        "{prices_vat}": "include" if settings.SHOP_PRICES_INCLUDE_TAX else "exclude",
    }


def render_content(content: str) -> SafeString:
    """A page's HTML (trusted staff input) with its placeholders filled; other braces are left alone."""
    for placeholder, value in placeholders().items():
        content = content.replace(placeholder, value)
    return mark_safe(content)  # noqa: S308 (staff-written HTML, documented as trusted in the admin)
