"""The storefront's recommendation slots: which products each shows, and the visitor's recently viewed products.

A slot is built in three steps, each a constant number of queries whatever its size:
  1. candidate product ids from recommendations' services (related products, best sellers for the cold start),
     cached for SHOP_RECS_IDS_SECONDS under a key naming what they depend on (they change only when the nightly
     or incremental build runs);
  2. the cards of all candidates in ONE read through catalog's public face (products_cards), fresh on every
     request, so price and stock follow the catalog as the product page does;
  3. filtering: never an inactive (catalog leaves them out), sold-out (no variant in stock) or already-in-cart
     product, nor the page's own product; the first SLOT_SIZE that remain are shown.

Recommendations can fail (its database on another server, the cache down): a slot that cannot be built is left
out and the page renders without it. Visitors' recently viewed products live in a signed cookie of their own (not
the session: looking at a product writes nothing to the database or the cache, and a crawler starts no sessions);
signed-in customers' are also kept by recommendations (recently_viewed_add), and a visitor's list joins the
account's on sign-in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from catalog.services import ProductCard, products_cards
from recommendations import services as recs

logger = logging.getLogger(__name__)

SLOT_SIZE = 8
RECENT_COOKIE = "recently_viewed"  # "12.7.31": product ids, latest first, signed (a visitor cannot plant others)
RECENT_SALT = "shop.recently_viewed"
RECENT_KEPT = 12
RECENT_MAX_AGE = 60 * 60 * 24 * 30


@dataclass(frozen=True)
class Slot:
    name: str  # also-bought, together, for-you, recent: the section's id and the test's handle
    title: str
    cards: tuple[ProductCard, ...]
    one_click: bool = False  # each card gets an "Add" button (the cart's "Frequently bought together")


# ---- candidate ids, cached


def _key(name: str) -> str:
    return "shop:recs:" + hashlib.sha256(name.encode()).hexdigest()[:32]


def _ids(name: str, compute: Callable[[], Iterable[int]]) -> tuple[int, ...]:
    """compute()'s ids, cached; () when recommendations cannot answer (not cached: the next request tries again)."""
    return _ids_many((name, compute))[0]


def _ids_many(*wanted: tuple[str, Callable[[], Iterable[int]]]) -> list[tuple[int, ...]]:
    """_ids of each (name, compute), the cached ones read in one round trip to the cache."""
    keys = [_key(name) for name, _ in wanted]
    try:
        cached = cache.get_many(keys)
    except Exception:  # the cache is down: ask recommendations directly
        logger.warning("cache unavailable; recommendations computed uncached", exc_info=True)
        cached = {}
    results = []
    for key, (name, compute) in zip(keys, wanted, strict=True):
        found = cached.get(key)
        if found is None:
            try:
                found = tuple(int(pk) for pk in compute())
            except Exception:  # recommendations' database down (RecommendationsUnavailable) or any other failure
                logger.warning("recommendations unavailable; slot %s left out", name, exc_info=True)
                results.append(())
                continue
            try:
                cache.set(key, found, timeout=settings.SHOP_RECS_IDS_SECONDS)
            except Exception:
                logger.warning("cache unavailable; recommendations %s not stored", name, exc_info=True)
        results.append(found)
    return results


def _seeds_name(product_ids: Iterable[int]) -> str:
    return ",".join(str(pk) for pk in sorted(set(product_ids)))


def _best_sellers(category_id: int | None) -> tuple[int, ...]:
    return _ids(*_best_sellers_read(category_id))


def _best_sellers_read(category_id: int | None) -> tuple[str, Callable[[], Iterable[int]]]:
    return f"best:{category_id}", lambda: recs.best_sellers(category_id=category_id, limit=3 * SLOT_SIZE)


# ---- cards


def _cards(
    candidates: Sequence[int], *, exclude: Iterable[int] = (), one_click: bool = False
) -> tuple[ProductCard, ...]:
    """The first SLOT_SIZE candidates that can be bought now and are not excluded: one catalog read. one_click:
    each card with the variant its "Add" button puts in the cart (only the cart's slot has the button)."""
    excluded = set(exclude)
    wanted = [pk for pk in dict.fromkeys(candidates) if pk not in excluded]
    if not wanted:
        return ()
    try:
        cards = products_cards(product_ids=wanted, add_variant=one_click)
    except Exception:  # a slot never takes the page down with it
        logger.warning("catalog cards unavailable; slot left out", exc_info=True)
        return ()
    buyable = (c for c in cards if (c.add_variant_id is not None if one_click else c.in_stock))
    return tuple(buyable)[:SLOT_SIZE]


def also_bought(*, product_id: int, category_id: int | None, cart_product_ids: Iterable[int] = ()) -> Slot | None:
    """Product page: "Customers who bought this also bought", filled from the category's best sellers, then the
    shop's, when the product has too few related products (cold start)."""
    related, in_category, in_shop = _ids_many(
        (f"related:{product_id}", lambda: recs.related_products(product_id=product_id, limit=SLOT_SIZE)),
        _best_sellers_read(category_id),
        _best_sellers_read(None),
    )
    fill = in_category + in_shop
    cards = _cards(related + fill, exclude={product_id, *cart_product_ids})
    if not cards:
        return None
    learned = set(related)
    title = "Customers who bought this also bought" if learned & {c.id for c in cards} else "Popular right now"
    return Slot("also-bought", title, cards)


def bought_together(*, cart_product_ids: Sequence[int]) -> Slot | None:
    """Cart: "Frequently bought together" with the cart's products, each card with a one-click "Add"."""
    if not cart_product_ids:
        return None
    seeds = _seeds_name(cart_product_ids)
    related = _ids(
        f"together:{seeds}",
        lambda: recs.related_to_products(product_ids=sorted(set(cart_product_ids)), limit=SLOT_SIZE),
    )
    cards = _cards(related + _best_sellers(None), exclude=cart_product_ids, one_click=True)
    if not cards:
        return None
    learned = set(related)
    title = "Frequently bought together" if learned & {c.id for c in cards} else "Popular right now"
    return Slot("together", title, cards, one_click=True)


def recommended_for_you(
    *, user_id: int | None, viewed: Sequence[int], cart_product_ids: Iterable[int] = ()
) -> Slot | None:
    """Home page: "Recommended for you", from what the customer bought and viewed (visitors: viewed). Hidden when
    there is nothing to go on or nothing related."""
    bought: tuple[int, ...] = ()
    if user_id is not None:
        bought = _ids(f"bought:{user_id}", lambda: recs.customer_products(user_id=user_id, limit=20))
    seeds = tuple(dict.fromkeys((*viewed, *bought)))
    if not seeds:
        return None
    related = _ids(
        f"related-to:{_seeds_name(seeds)}",
        lambda: recs.related_to_products(product_ids=sorted(seeds), limit=SLOT_SIZE),
    )
    cards = _cards(related, exclude={*seeds, *cart_product_ids})
    return Slot("for-you", "Recommended for you", cards) if cards else None


def recently_viewed_slot(
    *, viewed: Sequence[int], current_product_id: int | None = None, cart_product_ids: Iterable[int] = ()
) -> Slot | None:
    cards = _cards(viewed, exclude={current_product_id, *cart_product_ids} - {None})
    return Slot("recent", "Recently viewed", cards) if cards else None


# ---- recently viewed


def has_viewed(request: HttpRequest) -> bool:
    """Whether this visitor carries a recently viewed list (their pages are then their own, not the shared ones)."""
    return RECENT_COOKIE in request.COOKIES


def _cookie_viewed(request: HttpRequest) -> list[int]:
    raw = request.get_signed_cookie(RECENT_COOKIE, default="", salt=RECENT_SALT, max_age=RECENT_MAX_AGE)
    ids = [int(part) for part in raw.split(".") if part.isdigit() and len(part) <= 18] if raw else []
    return list(dict.fromkeys(ids))[:RECENT_KEPT]


def viewed(request: HttpRequest) -> tuple[int, ...]:
    """The products this visitor or customer viewed, latest first. A customer's come from recommendations (every
    device), with the cookie's as the fallback when recommendations cannot answer."""
    cookie_list = _cookie_viewed(request)
    if request.user.is_authenticated:
        try:
            stored = recs.recently_viewed(user_id=request.user.pk, limit=RECENT_KEPT)
        except Exception:
            logger.warning("recommendations unavailable; recently viewed from the cookie", exc_info=True)
            return tuple(cookie_list)
        return tuple(dict.fromkeys((*stored, *cookie_list)))[:RECENT_KEPT]
    return tuple(cookie_list)


def record_view(request: HttpRequest, response: HttpResponse, product_id: int) -> None:
    """Put the product at the front of the visitor's list (deduplicated, capped) in the response's cookie; a
    customer's is also stored by recommendations."""
    current = _cookie_viewed(request)
    updated = [product_id, *(pk for pk in current if pk != product_id)][:RECENT_KEPT]
    if updated != current:
        response.set_signed_cookie(
            RECENT_COOKIE, ".".join(map(str, updated)), salt=RECENT_SALT, max_age=RECENT_MAX_AGE, httponly=True,
            samesite="Lax", secure=settings.SESSION_COOKIE_SECURE,
        )  # fmt: skip
    if request.user.is_authenticated:
        try:
            recs.recently_viewed_add(user_id=request.user.pk, product_id=product_id)
        except Exception:
            logger.warning("recommendations unavailable; view kept in the cookie only", exc_info=True)


def merge_on_sign_in(request: HttpRequest, user_id: int) -> None:
    """A visitor who signs in keeps what they looked at: the cookie's list joins the account's."""
    cookie_list = _cookie_viewed(request)
    if not cookie_list:
        return
    try:
        recs.recently_viewed_merge(user_id=user_id, product_ids=cookie_list)
    except Exception:
        logger.warning("recommendations unavailable; recently viewed not merged", exc_info=True)


def cart_product_ids(storage) -> tuple[int, ...]:
    """The products in this cart (shop.cart storage): no query for an empty cart, one catalog read otherwise."""
    from catalog.services import variants_get

    stored = storage.lines()
    if not stored:
        return ()
    return tuple(dict.fromkeys(v.product_id for v in variants_get(variant_ids=stored).values()))
