"""The frame of every storefront page that every visitor sees alike: the head's stylesheet, script and icon, the
addresses of the header's links and forms, the category bar and the footer. Private to shop.

They are rendered once per process and kept until what they show changes (the category tree, the year, the shop's
name), instead of some forty {% url %} and {% static %} lookups and two loops over the categories on every page.
With DEBUG on they are rendered on every request, so that an edited template shows at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import get_urlconf, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from catalog.services import category_tree
from shop.info_pages import REQUIRED_PAGES

# The header's addresses, by the names base.html uses.
_URL_NAMES = {
    "home": "shop:home",
    "search": "shop:search",
    "suggest": "shop:suggest",
    "cart": "shop:cart",
    "orders": "shop:orders",
    "profile": "accounts:profile",
    "login": "accounts:login",
    "logout": "accounts:logout",
    "admin": "admin:index",
}


@dataclass(frozen=True)
class Chrome:
    assets: SafeString  # the <link> and <script> tags of <head>
    logo_url: str
    urls: dict[str, str]
    categories: SafeString  # the category bar ("" without categories)
    footer: SafeString
    key: tuple[Any, ...]  # what it is made of


_current: Chrome | None = None
_lock = threading.Lock()


def _key() -> tuple[Any, ...]:
    # The top-level categories (from catalog's cached tree: no query), the footer's year, the shop's name, where
    # the static files are, the URLconf. Compared by value: a few dozen fields.
    return (category_tree().roots(), timezone.localdate().year, settings.SHOP_NAME, settings.STATIC_URL, get_urlconf())


def _build(key: tuple[Any, ...]) -> Chrome:
    roots = key[0]
    context = {"SHOP_NAME": settings.SHOP_NAME, "nav_categories": roots, "year": key[1],
               "info_pages": REQUIRED_PAGES}  # fmt: skip
    return Chrome(
        assets=SafeString(render_to_string("shop/chrome/assets.html", context)),
        logo_url=static("img/logo.svg"),
        urls={name: reverse(view) for name, view in _URL_NAMES.items()},
        categories=SafeString(render_to_string("shop/chrome/categories.html", context) if roots else ""),
        footer=SafeString(render_to_string("shop/chrome/footer.html", context)),
        key=key,
    )


def chrome() -> Chrome:
    """The page frame's shared parts, as of now."""
    global _current
    key = _key()
    if settings.DEBUG:
        return _build(key)
    current = _current
    if current is not None and current.key == key:
        return current
    with _lock:  # one build at a time; a thread that waited finds it done
        if _current is None or _current.key != key:
            _current = _build(key)
        return _current
