"""The storefront's recommendation slots (shop/recs.py): what they show and leave out, the cold start, the queries
they cost, their cache, pages that still render when recommendations or the cache are down, and recently viewed
products for visitors and customers.

The reads recommendations builds (related_products, related_to_products, best_sellers, customer_products) are
replaced here at the service boundary by a table the test writes, so each test says exactly which products are
related; tests/test_browser_recs.py builds them from real paid orders instead.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from kernel.db import db_for_module
from tests.factories import DEFAULT_PASSWORD, UserFactory, make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]


class FakeRecs:
    """The contract's reads, answered from dictionaries, counting the calls."""

    def __init__(self) -> None:
        self.related: dict[int, list[int]] = {}
        self.best: dict[int | None, list[int]] = {}
        self.bought: dict[int, list[int]] = {}
        self.calls: list[str] = []
        self.down = False

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            from recommendations.services import RecommendationsUnavailable

            raise RecommendationsUnavailable("connection refused")

    def related_products(self, *, product_id: int, limit: int = 12) -> tuple[int, ...]:
        self._check("related_products")
        return tuple(self.related.get(product_id, ())[: 3 * limit])

    def related_to_products(self, *, product_ids, limit: int = 12) -> tuple[int, ...]:
        self._check("related_to_products")
        scores: dict[int, float] = {}
        for seed in product_ids:
            for rank, pk in enumerate(self.related.get(seed, ())):
                scores[pk] = scores.get(pk, 0) + 1 / (rank + 1)
        ranked = sorted((pk for pk in scores if pk not in set(product_ids)), key=lambda pk: -scores[pk])
        return tuple(ranked[: 3 * limit])

    def best_sellers(self, *, category_id: int | None, limit: int = 12) -> tuple[int, ...]:
        self._check("best_sellers")
        return tuple(self.best.get(category_id, ())[:limit])

    def customer_products(self, *, user_id: int, limit: int = 20) -> tuple[int, ...]:
        self._check("customer_products")
        return tuple(self.bought.get(user_id, ())[:limit])


@pytest.fixture
def fake(monkeypatch):
    from recommendations import services

    recs = FakeRecs()
    for name in ("related_products", "related_to_products", "best_sellers", "customer_products"):
        monkeypatch.setattr(services, name, getattr(recs, name), raising=False)
    return recs


@pytest.fixture
def shelf():
    """A product page's product and twelve others in its category, three in another category."""
    kitchen, garden = make_category("Kitchen"), make_category("Garden")
    main = make_product("Chef knife", kitchen)
    others = [make_product(f"Kitchen thing {i}", kitchen) for i in range(12)]
    away = [make_product(f"Garden thing {i}", garden) for i in range(3)]
    return main, others, away


def slot_titles(html: str, slot: str) -> list[str]:
    """The product titles of one slot, in order ([] when the slot is not on the page)."""
    match = re.search(rf'<section class="recs" id="recs-{slot}".*?</section>', html, re.S)
    if not match:
        return []
    return re.findall(r'<span class="card-title">([^<]*)</span>', match.group(0))


def sold_out(product) -> None:
    from catalog.models import StockItem
    from catalog.services import refresh_products

    StockItem.objects.filter(variant__product=product).update(on_hand=0, reserved=0)
    refresh_products(product_ids=[product.pk])


def add_to_cart(client, product) -> None:
    response = client.post("/cart/add", {"variant": product.variants.first().pk, "quantity": 1})
    assert response.status_code == 302


# ---------------------------------------------------------------- catalog's batch read


def test_products_cards_reads_many_products_in_one_query_in_the_order_asked(shelf, django_assert_num_queries):
    from catalog.services import products_cards

    main, others, _ = shelf
    others[1].is_active = False
    others[1].save()
    sold_out(others[2])
    with django_assert_num_queries(1, connection=connections[db_for_module("catalog")]):
        cards = products_cards(product_ids=[others[3].pk, others[1].pk, others[2].pk, main.pk, 999_999],
                               add_variant=True)  # fmt: skip
    assert [c.title for c in cards] == ["Kitchen thing 3", "Kitchen thing 2", "Chef knife"]  # inactive, unknown out
    assert cards[0].add_variant_id == others[3].variants.first().pk
    assert cards[1].add_variant_id is None
    assert not cards[1].in_stock
    with django_assert_num_queries(1, connection=connections[db_for_module("catalog")]):
        plain = products_cards(product_ids=[others[3].pk, others[2].pk])
    assert [(c.title, c.in_stock, c.add_variant_id) for c in plain] == [
        ("Kitchen thing 3", True, None),
        ("Kitchen thing 2", False, None),
    ], "without add_variant: no subquery, the read model's stock flag"


# ---------------------------------------------------------------- what the product page shows


def test_product_page_shows_also_bought_in_rank_order_without_unbuyable_products(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [main.pk, others[0].pk, others[1].pk, others[2].pk, others[3].pk, others[4].pk]
    others[1].is_active = False
    others[1].save()
    sold_out(others[2])
    add_to_cart(client, others[3])

    html = client.get(f"/p/{main.slug}/").content.decode()

    assert "Customers who bought this also bought" in html
    # itself, the inactive one, the sold-out one and the one in the cart are left out; then the cold-start fill
    assert slot_titles(html, "also-bought") == ["Kitchen thing 0", "Kitchen thing 4"]


def test_a_product_with_few_related_fills_from_its_categorys_best_sellers_then_the_shops(client, fake, shelf):
    main, others, away = shelf
    fake.related[main.pk] = [others[5].pk, others[6].pk]
    fake.best[main.category_id] = [others[6].pk, main.pk, others[7].pk, others[8].pk]
    fake.best[None] = [away[0].pk, others[7].pk, away[1].pk, away[2].pk, others[9].pk, others[10].pk]

    titles = slot_titles(client.get(f"/p/{main.slug}/").content.decode(), "also-bought")

    assert titles == [
        "Kitchen thing 5", "Kitchen thing 6",  # related first
        "Kitchen thing 7", "Kitchen thing 8",  # then the category's best sellers
        "Garden thing 0", "Garden thing 1", "Garden thing 2", "Kitchen thing 9",  # then the shop's, up to eight
    ]  # fmt: skip


def test_a_product_nobody_bought_with_anything_shows_popular_products_under_an_honest_title(client, fake, shelf):
    main, others, _ = shelf
    fake.best[main.category_id] = [others[0].pk, others[1].pk]
    html = client.get(f"/p/{main.slug}/").content.decode()
    assert "Popular right now" in html
    assert "Customers who bought this also bought" not in html
    assert slot_titles(html, "also-bought") == ["Kitchen thing 0", "Kitchen thing 1"]


def test_no_slot_at_all_when_there_is_nothing_to_show(client, fake, shelf):
    main, _, _ = shelf
    html = client.get(f"/p/{main.slug}/").content.decode()
    assert 'class="recs"' not in html
    assert "<!--recs-->" not in html


def test_slot_markup_is_a_headed_section_with_a_list_of_cards(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk]
    html = client.get(f"/p/{main.slug}/").content.decode()
    section = re.search(r'<section class="recs" id="recs-also-bought"[^>]*>', html).group(0)
    assert 'aria-labelledby="recs-also-bought-title"' in section
    assert '<h2 id="recs-also-bought-title"' in html
    assert '<ul class="recs-row">' in html


# ---------------------------------------------------------------- queries: constant whatever the slot's size


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("visitor", ["fresh visitor", "visitor with a cart", "customer"])
def test_the_slots_cost_the_same_queries_for_two_or_eight_related_products(client, fake, visitor):
    kitchen = make_category("Kitchen")
    two, eight = make_product("Two related", kitchen), make_product("Eight related", kitchen)
    pool = [make_product(f"Pool {i}", kitchen) for i in range(10)]
    fake.related[two.pk] = [p.pk for p in pool[:2]]
    fake.related[eight.pk] = [p.pk for p in pool[:8]]
    if visitor == "visitor with a cart":
        add_to_cart(client, pool[9])
    elif visitor == "customer":
        client.force_login(UserFactory())
    _queries(client, f"/p/{two.slug}/"), _queries(client, f"/p/{eight.slug}/")  # same session state for both

    counts = {n: _queries(client, f"/p/{p.slug}/") for n, p in ((2, two), (8, eight))}

    assert counts[2] == counts[8]
    html = client.get(f"/p/{eight.slug}/").content.decode()
    assert len(slot_titles(html, "also-bought")) == 8


def test_the_cart_slot_costs_the_same_queries_for_two_or_eight_related_products(client, fake):
    kitchen = make_category("Kitchen")
    seed_a, seed_b = make_product("Seed A", kitchen), make_product("Seed B", kitchen)
    pool = [make_product(f"Pool {i}", kitchen) for i in range(8)]
    fake.related[seed_a.pk] = [p.pk for p in pool[:2]]
    fake.related[seed_b.pk] = [p.pk for p in pool[:8]]
    add_to_cart(client, seed_a)
    client.get("/cart/")  # the message of the add shown and gone, the ids cached
    two = _queries(client, "/cart/")
    client.post("/cart/remove", {"variant": seed_a.variants.first().pk})
    add_to_cart(client, seed_b)
    client.get("/cart/")
    eight = _queries(client, "/cart/")
    assert two == eight
    assert len(slot_titles(client.get("/cart/").content.decode(), "together")) == 8


def test_the_product_slot_is_one_catalog_read_once_its_ids_are_cached(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [p.pk for p in others[:8]]
    client.get(f"/p/{main.slug}/")
    with CaptureQueriesContext(connections[db_for_module("catalog")]) as captured:
        client.get(f"/p/{main.slug}/")
    card_reads = [q["sql"] for q in captured if '"catalog_product"."id" IN' in q["sql"]]
    assert len(card_reads) == 1
    assert "catalog_variant" not in card_reads[0], "a display slot needs no variant subquery"


# ---------------------------------------------------------------- the cache


def test_a_slots_ids_are_cached_but_its_cards_follow_stock_and_price_at_once(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk, others[1].pk]
    first = client.get(f"/p/{main.slug}/").content.decode()
    asked = fake.calls.count("related_products")
    assert slot_titles(first, "also-bought")[:2] == ["Kitchen thing 0", "Kitchen thing 1"]

    fake.related[main.pk] = [others[1].pk]  # a rebuild: seen once the cached ids expire
    sold_out(others[0])  # the catalog: seen on the next page
    second = client.get(f"/p/{main.slug}/").content.decode()

    assert fake.calls.count("related_products") == asked, "the ids came from the cache"
    assert slot_titles(second, "also-bought")[0] == "Kitchen thing 1"
    assert "Kitchen thing 0" not in slot_titles(second, "also-bought")


def test_the_ids_are_asked_again_once_their_time_is_up(client, fake, shelf, settings):
    from django.core.cache import cache

    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk]
    client.get(f"/p/{main.slug}/")
    cache.clear()  # what SHOP_RECS_IDS_SECONDS passing does
    fake.related[main.pk] = [others[3].pk]
    html = client.get(f"/p/{main.slug}/").content.decode()
    assert slot_titles(html, "also-bought")[0] == "Kitchen thing 3"


@pytest.mark.parametrize("visitor", ["fresh visitor", "visitor with a cart"])
def test_with_the_page_cache_on_the_slot_is_outside_the_shared_part(client, fake, shelf, settings, visitor):
    """The product's part is cached for everyone; the slot leaves out what is in this visitor's cart, so it is
    rendered for them, and the fresh visitor's whole page (no cart, nothing viewed) is cached with its slot."""
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk, others[1].pk]
    client.get(f"/p/{main.slug}/")  # warms the cache (and gives this client a session)
    client.cookies.clear()
    if visitor == "visitor with a cart":
        add_to_cart(client, others[0])
    titles = slot_titles(client.get(f"/p/{main.slug}/").content.decode(), "also-bought")
    expected = ["Kitchen thing 1"] if visitor == "visitor with a cart" else ["Kitchen thing 0", "Kitchen thing 1"]
    assert titles == expected


# ---------------------------------------------------------------- failures: the page renders without the slot


class BrokenCache:
    """A cache whose server is gone: every call raises, as django-redis does with the server down."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache down")

        return fail


def test_pages_render_without_the_slots_when_recommendations_are_down(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk]
    fake.down = True
    client.force_login(UserFactory())
    client.get(f"/p/{others[0].slug}/")
    for url in (f"/p/{main.slug}/", "/"):
        response = client.get(url)
        assert response.status_code == 200
        assert slot_titles(response.content.decode(), "also-bought") == []
    add_to_cart(client, main)
    response = client.get("/cart/")
    assert response.status_code == 200
    assert "Chef knife" in response.content.decode()
    assert slot_titles(response.content.decode(), "together") == []


def test_the_slot_still_shows_when_the_cache_is_down(client, fake, shelf, monkeypatch):
    from shop import recs

    main, others, _ = shelf
    fake.related[main.pk] = [others[0].pk]
    monkeypatch.setattr(recs, "cache", BrokenCache())
    response = client.get(f"/p/{main.slug}/")
    assert response.status_code == 200
    assert slot_titles(response.content.decode(), "also-bought")[0] == "Kitchen thing 0"


@pytest.fixture
def recommendations_db_unreachable(settings):
    """The recommendations alias pointed at a database nobody answers on (a closed port; for SQLite a file that
    cannot be opened): a real connection attempt, and the real error, on every read and write of the module."""
    alias = "recommendations"
    base = connections["default"].settings_dict
    broken = {**base, "NAME": "/nonexistent/dir/recs.sqlite3"} if base["ENGINE"].endswith("sqlite3") else {
        **base, "HOST": "127.0.0.1", "PORT": "9", "NAME": "recs_unreachable", "OPTIONS": {"connect_timeout": 2},
    }  # fmt: skip
    had = alias in connections.settings
    old_conf = connections.settings.get(alias)
    old_conn = connections[alias] if had else None
    databases = dict(settings.DATABASES)
    databases[alias] = broken
    settings.DATABASES = databases
    connections.settings[alias] = broken
    if had:
        del connections[alias]
    yield
    connections[alias].close()
    if had:
        connections.settings[alias] = old_conf
        connections[alias] = old_conn
    else:
        del connections.settings[alias]
        del connections[alias]


def test_a_customers_pages_render_when_the_recommendations_database_cannot_be_reached(
    client, shelf, recommendations_db_unreachable
):
    main, others, _ = shelf
    client.force_login(UserFactory())
    for url in (f"/p/{main.slug}/", f"/p/{others[0].slug}/", "/", "/cart/"):
        assert client.get(url).status_code == 200, url
    # the views the database could not keep are still in the session
    html = client.get("/").content.decode()
    assert slot_titles(html, "recent") == ["Kitchen thing 0", "Chef knife"]


# ---------------------------------------------------------------- recently viewed


def test_a_visitors_recently_viewed_are_latest_first_deduplicated_and_capped(client, fake):
    from shop.recs import RECENT_KEPT

    kitchen = make_category("Kitchen")
    products = [make_product(f"Seen {i}", kitchen) for i in range(RECENT_KEPT + 3)]
    for product in products:
        client.get(f"/p/{product.slug}/")
    client.get(f"/p/{products[0].slug}/")  # seen again: back to the front

    cookie = client.cookies["recently_viewed"]
    expected = [products[0].pk, *(p.pk for p in reversed(products[-11:]))]
    assert cookie.value.split(":")[0] == ".".join(map(str, expected)), "the list, signed"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert "sessionid" not in client.cookies, "looking at products starts no session"
    home = slot_titles(client.get("/").content.decode(), "recent")
    assert home == ["Seen 0", "Seen 14", "Seen 13", "Seen 12", "Seen 11", "Seen 10", "Seen 9", "Seen 8"]


def test_recently_viewed_on_a_product_page_leaves_out_the_product_itself_and_the_cart(client, fake, shelf):
    main, others, _ = shelf
    for product in (others[0], others[1], others[2], main):
        client.get(f"/p/{product.slug}/")
    add_to_cart(client, others[1])
    assert slot_titles(client.get(f"/p/{main.slug}/").content.decode(), "recent") == [
        "Kitchen thing 2",
        "Kitchen thing 0",
    ]


def test_a_tampered_or_forged_recently_viewed_cookie_is_ignored(client, fake, shelf):
    main, others, _ = shelf
    client.get(f"/p/{others[0].slug}/")
    signed = client.cookies["recently_viewed"].value
    client.cookies["recently_viewed"] = signed.replace(str(others[0].pk), str(others[1].pk), 1)
    assert slot_titles(client.get("/").content.decode(), "recent") == []
    client.cookies["recently_viewed"] = "<script>alert(1)</script>"
    response = client.get(f"/p/{main.slug}/")
    assert response.status_code == 200
    assert slot_titles(response.content.decode(), "recent") == []


def test_a_first_product_view_is_private_and_writes_nothing(client, fake, shelf):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    main, _, _ = shelf
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/p/{main.slug}/")
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == [], "no session row, no write of any kind"
    assert "recently_viewed" in response.cookies
    assert "private" in response["Cache-Control"], "a response that sets a cookie is for this visitor only"


def test_home_has_no_personal_slots_for_a_visitor_who_saw_nothing(client, fake, shelf):
    html = client.get("/").content.decode()
    assert slot_titles(html, "recent") == []
    assert slot_titles(html, "for-you") == []


def test_a_customers_views_are_kept_by_recommendations_and_follow_them_to_another_device(client, fake, shelf):
    from recommendations.services import recently_viewed

    main, others, _ = shelf
    user = UserFactory()
    client.force_login(user)
    for product in (others[0], main, others[1]):
        client.get(f"/p/{product.slug}/")
    assert recently_viewed(user_id=user.pk, limit=12) == (others[1].pk, main.pk, others[0].pk)

    from django.test import Client

    phone = Client()
    phone.force_login(user)
    assert slot_titles(phone.get("/").content.decode(), "recent") == [
        "Kitchen thing 1",
        "Chef knife",
        "Kitchen thing 0",
    ]


def test_what_a_visitor_viewed_joins_their_account_when_they_sign_in(client, fake, shelf):
    from recommendations.services import recently_viewed, recently_viewed_add

    main, others, _ = shelf
    user = UserFactory()
    recently_viewed_add(user_id=user.pk, product_id=others[5].pk)
    for product in (others[0], main):
        client.get(f"/p/{product.slug}/")
    response = client.post("/account/login/", {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert recently_viewed(user_id=user.pk, limit=12) == (main.pk, others[0].pk, others[5].pk)


def test_recommended_for_you_comes_from_purchases_and_views_and_hides_them(client, fake, shelf):
    main, others, _ = shelf
    user = UserFactory()
    fake.bought[user.pk] = [main.pk]
    fake.related[main.pk] = [others[0].pk, others[1].pk]
    fake.related[others[2].pk] = [others[3].pk, main.pk]
    client.force_login(user)
    client.get(f"/p/{others[2].slug}/")
    titles = slot_titles(client.get("/").content.decode(), "for-you")
    assert set(titles) == {"Kitchen thing 0", "Kitchen thing 1", "Kitchen thing 3"}  # not what they bought or saw


def test_a_visitors_recommended_for_you_comes_from_what_they_viewed(client, fake, shelf):
    main, others, _ = shelf
    fake.related[main.pk] = [others[4].pk]
    assert slot_titles(client.get("/").content.decode(), "for-you") == []
    client.get(f"/p/{main.slug}/")
    assert slot_titles(client.get("/").content.decode(), "for-you") == ["Kitchen thing 4"]


# ---------------------------------------------------------------- the cart's one-click "Add"


def test_frequently_bought_together_adds_the_first_variant_in_stock_with_one_click(client, fake):
    kitchen = make_category("Kitchen")
    pan = make_product("Pan", kitchen)
    lid = make_product(
        "Lid", kitchen,
        variants=[{"options": {"Size": "S"}, "price": "5.00", "stock": 0},
                  {"options": {"Size": "M"}, "price": "6.00", "stock": 3}],
    )  # fmt: skip
    fake.related[pan.pk] = [lid.pk]
    add_to_cart(client, pan)
    html = client.get("/cart/").content.decode()
    assert slot_titles(html, "together") == ["Lid"]
    medium = lid.variants.get(options={"Size": "M"})
    assert f'name="variant" value="{medium.pk}"' in html

    response = client.post("/cart/add", {"variant": medium.pk, "quantity": 1, "next": "/cart/"})
    assert response.status_code == 302
    assert response["Location"] == "/cart/"
    after = client.get("/cart/").content.decode()
    assert "Lid" in after
    assert slot_titles(after, "together") == []
