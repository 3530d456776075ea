"""The demo shop's past orders (shop.demo_orders, orders_demo_history): deterministic, idempotent, leaving stock
alone, fed to recommendations through the orders' events, and with a taste that shows in the data and in what the
recommendations learn from it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core import mail
from django.core.management import call_command
from django.test import override_settings

from catalog.services import demo_catalog_products, demo_catalog_seed, variants_get
from orders.models import Order, OrderLine
from orders.services import HistoryLine, HistoryOrder, orders_demo_history
from shop.demo_orders import DEMO_CUSTOMER_EMAIL, demo_order_plan, demo_orders_seed

pytestmark = [pytest.mark.modules, pytest.mark.django_db(transaction=True)]

TODAY = datetime(2026, 12, 1, tzinfo=UTC)
TENT, BAG = "Two-person tent", "Sleeping bag"


@pytest.fixture
def catalog():
    demo_catalog_seed(products=400, seed=1)
    return {p.id: p for p in demo_catalog_products(seed=1)}


@pytest.fixture
def full_catalog():
    """The demo shop's own catalog (1,000 products): the one with tents and sleeping bags both."""
    demo_catalog_seed(products=1000, seed=1)
    return {p.id: p for p in demo_catalog_products(seed=1)}


def _plan_view(plan):
    return [(o.key, o.email, o.placed_at, tuple((p.id, v.id) for p, v in o.lines)) for o in plan]


def _baskets() -> list[set[int]]:
    baskets: dict[int, set[int]] = {}
    for order_id, product_id in OrderLine.objects.values_list("order_id", "product_id"):
        baskets.setdefault(order_id, set()).add(product_id)
    return list(baskets.values())


def test_the_plan_is_the_same_for_the_same_seed_and_another_for_another(catalog):
    products = list(catalog.values())
    first = demo_order_plan(products, customers=80, orders=300, seed=1, today=TODAY)
    again = demo_order_plan(products, customers=80, orders=300, seed=1, today=TODAY)
    other = demo_order_plan(products, customers=80, orders=300, seed=2, today=TODAY)
    assert _plan_view(first) == _plan_view(again)
    assert _plan_view(first) != _plan_view(other)
    assert len(first) == 300
    assert {len(o.lines) for o in first} == {1, 2, 3, 4, 5}
    assert all(o.placed_at <= TODAY for o in first)
    assert any(o.email == DEMO_CUSTOMER_EMAIL for o in first)


def test_seeding_twice_adds_nothing_and_leaves_stock_and_mailboxes_alone(catalog):
    variant_ids = [v.id for p in catalog.values() for v in p.variants]
    stock_before = {vid: v.available for vid, v in variants_get(variant_ids=variant_ids).items()}
    first = demo_orders_seed(customers=60, orders=250, seed=1, today=TODAY)
    assert (first.orders_created, first.orders_existing) == (250, 0)
    lines = OrderLine.objects.count()
    numbers = set(Order.objects.values_list("number", flat=True))
    second = demo_orders_seed(customers=60, orders=250, seed=1, today=TODAY)
    assert (second.orders_created, second.orders_existing) == (0, 250)
    assert set(Order.objects.values_list("number", flat=True)) == numbers
    assert OrderLine.objects.count() == lines == first.lines
    # past orders: delivered, paid, no stock taken, no confirmation emails to 250 made-up customers
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.DELIVERED}
    assert not Order.objects.filter(confirmation_sent_at__isnull=True).exists()
    assert {vid: v.available for vid, v in variants_get(variant_ids=variant_ids).items()} == stock_before
    assert mail.outbox == []
    # the snapshots are what the catalog sold the variant as
    line = OrderLine.objects.order_by("id").first()
    product = catalog[line.product_id]
    variant = next(v for v in product.variants if v.id == line.variant_id)
    assert (line.name, line.sku, line.unit_price) == (product.title, variant.sku, variant.price)
    order = line.order
    assert order.subtotal == sum(li.line_total for li in order.lines.all())
    assert [h.to_status for h in order.history.all()] == ["pending_payment", "paid", "shipped", "delivered"]


def test_the_demo_customer_has_an_account_and_orders_of_their_own(catalog):
    result = demo_orders_seed(customers=60, orders=250, seed=1, today=TODAY)
    user = authenticate(username=DEMO_CUSTOMER_EMAIL, password=result.demo_password)
    assert user is not None
    assert not user.is_staff
    mine = Order.objects.filter(user_id=user.pk)
    assert mine.count() >= 3
    kinds = Counter(
        catalog[pid].kind for pid in OrderLine.objects.filter(order__in=mine).values_list("product_id", flat=True)
    )
    assert {"camping", "pans"} & {kind for kind, _ in kinds.most_common(3)}  # a camper and a cook, as planned
    assert Order.objects.filter(user_id__isnull=True).exists()  # some guests too


def test_a_history_order_without_lines_is_refused_and_nothing_of_it_is_written(catalog):
    product = next(iter(catalog.values()))
    v = product.variants[0]
    good = HistoryOrder(key="t:1", email="a@demo.example", user_id=None, placed_at=TODAY,
                        lines=(HistoryLine(variant_id=v.id, product_id=product.id, sku=v.sku, name=product.title,
                                           variant_label=v.label, unit_price=v.price),))  # fmt: skip
    empty = HistoryOrder(key="t:2", email="b@demo.example", user_id=None, placed_at=TODAY, lines=())
    with pytest.raises(ValueError, match="lines"):
        orders_demo_history(orders=[good, empty])
    assert not Order.objects.exists()


@override_settings(RECS_REBUILD_EVERY=0)  # one build, below
def test_taste_shows_in_the_baskets_and_in_what_recommendations_learn(full_catalog):
    from recommendations.services import customer_products, recs_build, related_products

    catalog = full_catalog
    result = demo_orders_seed(customers=300, orders=2000, seed=1, today=TODAY)
    baskets = _baskets()
    n = len(baskets)
    tents = {pid for pid, p in catalog.items() if p.noun == TENT}
    bags = {pid for pid, p in catalog.items() if p.noun == BAG}
    with_tent = sum(1 for b in baskets if b & tents)
    with_bag = sum(1 for b in baskets if b & bags)
    both = sum(1 for b in baskets if b & tents and b & bags)
    expected = with_tent * with_bag / n
    assert with_tent >= 10
    assert with_bag >= 10
    assert both > 5 * expected  # a tent and a sleeping bag go together far more often than chance
    # popularity is skewed (Zipf): the top tenth of products sells far more than a tenth of the items
    sold = Counter(pid for b in baskets for pid in b)
    top = sum(count for _, count in sold.most_common(len(catalog) // 10))
    assert top > 0.3 * sum(sold.values())

    report = recs_build()
    assert report.orders == result.orders_created
    # the most bought tent's related products name a sleeping bag, though nobody told the model what goes together
    tent = max(tents, key=lambda pid: sold[pid])
    related = related_products(product_id=tent, limit=12)[:12]
    assert set(related) & bags
    # and the demo customer's history is what they bought, as the orders' events told recommendations
    demo = authenticate(username=DEMO_CUSTOMER_EMAIL, password=result.demo_password)
    bought = set(OrderLine.objects.filter(order__user_id=demo.pk).values_list("product_id", flat=True))
    assert set(customer_products(user_id=demo.pk, limit=100)) == bought


@override_settings(DEBUG=True)
def test_demo_setup_prints_the_demo_customer_and_fills_the_recommendations(catalog):
    from recommendations.services import best_sellers

    out = StringIO()
    call_command("demo_setup", products=400, orders=300, customers=60, stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Demo orders: 300 past orders added" in text
    assert "Recommendations built: 300 orders" in text
    password = text.split(DEMO_CUSTOMER_EMAIL, 1)[1].split("password:", 1)[1].split()[0]
    assert authenticate(username=DEMO_CUSTOMER_EMAIL, password=password) is not None
    assert len(best_sellers(category_id=None, limit=12)) >= 12  # up to three times the limit, for filtering
    again = StringIO()
    call_command("demo_setup", products=400, orders=300, customers=60, stdout=again, stderr=StringIO())
    assert "Demo orders: 0 past orders added, 300 already there" in again.getvalue()
    assert Order.objects.count() == 300
