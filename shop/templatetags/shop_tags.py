from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Any

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def escape(value: Any) -> str:
    """What django.utils.html.escape gives (&, <, >, " and ' escaped), as a plain str: the tags below build their
    HTML from many small values, and Django's version (lazy strings, SafeString) costs 3 times more a call."""
    return html.escape(str(value))


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
_patterns: dict[tuple[str, str, Any], tuple[str, str]] = {}


def slug_url(view: str, slug: str) -> str:
    """The address of a view that takes one slug, as reverse() gives it: the URL pattern is reversed once (per view,
    script prefix and URLconf), then the slug is put in (a listing has 24 to 48 cards, a product page a few
    breadcrumbs: a reverse() each was a measurable part of the page). Slugs are URL-safe: nothing needs quoting."""
    key = (view, get_script_prefix(), get_urlconf())
    pattern = _patterns.get(key)
    if pattern is None:
        before, after = reverse(view, args=[_SLUG]).split(_SLUG)
        pattern = _patterns[key] = (before, after)
    return f"{pattern[0]}{slug}{pattern[1]}"


@register.filter
def product_url(slug: str) -> str:
    """The product page's address, as {% url 'shop:product' slug %} gives it (slug_url)."""
    return slug_url("shop:product", slug)


@register.filter
def category_url(slug: str) -> str:
    """A category page's address, as {% url 'shop:category' slug %} gives it (slug_url)."""
    return slug_url("shop:category", slug)


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


@register.simple_tag(takes_context=True)
def product_card(context: template.Context, card: Any, recs: bool = False, one_click: bool = False) -> SafeString:
    """One product card, as listings, the home page and the recommendation slots show it: a link with the picture,
    brand and title, the price ("from" when the variants' prices differ, the old price struck through on sale),
    then the stock, or in a slot with one_click an "Add" form (its CSRF token and the page to come back to, `next_url`,
    from the context). A card is the storefront's most repeated fragment (24 to 48 a listing), so it is built here
    rather than by an included template: about 50 microseconds a card less. Every value is escaped."""
    title = escape(card.title)
    parts = [
        f'<li class="card recs-card" data-product-id="{int(card.id)}">' if recs else '<li class="card">',
        f'\n<a class="card-link" href="{escape(product_url(card.slug))}">\n<span class="card-image">',
    ]
    if card.image_url:
        parts.append(f'<img src="{escape(card.image_url)}" alt="{escape(card.image_alt)}" width="480" height="480" '
                     'loading="lazy">')  # fmt: skip
    parts.append(f'</span>\n<span class="card-brand">{escape(card.brand)}</span>\n<span class="card-title">{title}'
                 '</span>\n</a>\n<p class="card-price">\n')  # fmt: skip
    if card.price_varies:
        parts.append('<span class="from">from</span> ')
    parts.append(f"<strong>{escape(money(card.price_min, card.currency))}</strong>\n")
    if card.on_sale:
        was = escape(money(card.compare_at_price, card.currency))
        parts.append(f'<s><span class="visually-hidden">was </span>{was}</s>\n')
    parts.append("</p>\n")
    if one_click:
        token = context.get("csrf_token")
        given = token and str(token) != "NOTPROVIDED"
        csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(token)}">' if given else ""
        parts.append(
            f'<form class="recs-add" method="post" action="{escape(_cart_add_url())}" data-recs-add>{csrf}'
            f'<input type="hidden" name="variant" value="{escape(card.add_variant_id)}">'
            '<input type="hidden" name="quantity" value="1">'
            f'<input type="hidden" name="next" value="{escape(context.get("next_url") or "/cart/")}">'
            f'<button class="button small" type="submit">Add<span class="visually-hidden"> {title} to your cart'
            '</span></button><p class="add-status" role="status" aria-live="polite"></p></form>\n'
        )
    elif not recs:
        parts.append('<p class="card-stock ok">In stock</p>\n' if card.in_stock else
                     '<p class="card-stock out">Out of stock</p>\n')  # fmt: skip
    parts.append("</li>")
    return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped)


def _cart_add_url() -> str:
    return reverse("shop:cart-add")


def _facet_items(key: str, values: Any) -> str:
    return "".join(
        f'<li><label><input type="checkbox" name="{key}" value="{escape(v.value)}"{" checked" if v.selected else ""}>'
        f' {escape(v.label)} <span class="count">({int(v.count)})</span></label></li>\n'
        for v in values
    )


@register.simple_tag
def facet_fieldset(group: Any) -> SafeString:
    """One facet of a listing's filter panel (shop.views.FacetGroup): a checkbox per value with its count, the values
    past the first few behind "Show N more". A listing has a few facets of up to dozens of values, rendered for every
    filter combination, so this is built here rather than by template loops. Every value is escaped."""
    key = escape(group.facet.key)
    parts = [f'<fieldset class="facet">\n<legend>{escape(group.facet.label)}</legend>\n<ul>\n',
             _facet_items(key, group.shown), "</ul>\n"]  # fmt: skip
    if group.more:
        parts.append(f'<details class="facet-more">\n<summary>Show {len(group.more)} more</summary>\n<ul>\n'
                     f"{_facet_items(key, group.more)}</ul>\n</details>\n")  # fmt: skip
    parts.append("</fieldset>")
    return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped)


@register.simple_tag
def select_options(choices: Any, chosen: Any) -> SafeString:
    """<option>s of a <select>: `choices` a mapping of value to label, or a sequence of values shown as they are;
    the one equal to `chosen` selected. Every value is escaped."""
    pairs = choices.items() if hasattr(choices, "items") else ((c, c) for c in choices)
    return mark_safe("".join(  # noqa: S308 (every value is escaped)
        f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>{escape(label)}</option>'
        for value, label in pairs
    ))  # fmt: skip


_NOTES = {"sold-out": "(sold out)", "missing": "(not available)"}


def _option_label(group: Any, choice: Any) -> str:
    value = escape(choice.value)
    colour = group.is_colour
    state = choice.state
    title = f' title="{value}"' if colour else ""
    head = (f'<label class="option{" swatch" if colour else ""}" data-state="{escape(state)}"{title}>\n'
            f'<input type="radio" name="o_{escape(group.key)}" value="{value}"'
            f'{" checked" if choice.selected else ""}{" disabled" if choice.disabled else ""}>\n')  # fmt: skip
    if colour:
        swatch = escape(choice.swatch)
        style = f' style="--swatch: {swatch}"' if choice.swatch else ""
        initial = "" if choice.swatch else escape(choice.value[:1])
        shown = (f'<span class="swatch-dot{"" if choice.swatch else " unknown"}"{style} aria-hidden="true">{initial}'
                 f'</span><span class="visually-hidden">{value}</span>')  # fmt: skip
    else:
        shown = f'<span class="option-text">{value}</span>'
    return f'{head}{shown}<span class="visually-hidden option-note">{_NOTES.get(state, "")}</span>\n</label>\n'


@register.simple_tag
def option_groups(choices: Any) -> SafeString:
    """The product page's variant picker (catalog.data.ProductDetail.choices: each option group with its values as
    offered for the variant chosen): a group of one value as text, else a fieldset of radio buttons (swatches for a
    colour) whose state (available, sold out, not made) the picker's script and the styles read. Rendered on every
    product page, so built here rather than by nested template loops (a third of the page's template time). Every
    value is escaped."""
    parts = []
    for index, (group, offered) in enumerate(choices):
        name = escape(group.name)
        if group.single:
            parts.append(f'<p class="option-single"><span class="option-name">{name}:</span> '
                         f"{escape(group.values[0])}</p>\n")  # fmt: skip
            continue
        chosen = "".join(escape(c.value) for c in offered if c.selected)
        parts.append(f'<fieldset class="option-group{" swatches" if group.is_colour else ""}" data-option="{index}">\n'
                     f'<legend>{name}: <span class="option-chosen">{chosen}</span></legend>\n'
                     '<div class="option-values">\n')  # fmt: skip
        parts.extend(_option_label(group, c) for c in offered)
        parts.append("</div>\n</fieldset>\n")
    return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped)
