"""Who may open an order without signing in: the guest who holds its link. Private to orders.

The link carries a token signed with the shop's SECRET_KEY (django.core.signing, salted for this purpose) over the
order's number and its own random secret (Order.access_token), so it opens that order only: it cannot be made
without the key, a changed character breaks it, and with another order's number it opens nothing. The secret
itself never needs to appear in an address. Rotating SECRET_KEY (with SECRET_KEY_FALLBACKS for a while) ends the
links given out before. The secret as such is still accepted, as links handed to payment gateways before the
signed links existed carried it.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

SALT = "orders.order-access-link"
MAX_TOKEN_LENGTH = 100


def _value(number: str, secret: str) -> str:
    return f"{number}:{secret}"


def link_token(number: str, secret: str) -> str:
    """The token of the order's guest link: the signature of its number and secret (no expiry)."""
    return signing.Signer(salt=SALT).signature(_value(number, secret))


def opens(number: str, secret: str, token: str | None) -> bool:
    """Whether `token` (from a link) opens the order with this number and secret."""
    if not token or not secret or len(token) > MAX_TOKEN_LENGTH:
        return False
    if secrets.compare_digest(secret, token):  # the raw secret, as older links carry it
        return True
    try:
        signing.Signer(salt=SALT).unsign(f"{_value(number, secret)}{signing.Signer().sep}{token}")
    except signing.BadSignature:
        return False
    return True


def order_url(number: str, secret: str, *, guest: bool) -> str:
    """The absolute address of the order's page (SHOP_SITE_URL): with the signed token for a guest's order; a
    customer's order asks them to sign in."""
    url = settings.SHOP_SITE_URL + reverse("shop:order", args=[number])
    return f"{url}?{urlencode({'t': link_token(number, secret)})}" if guest else url
