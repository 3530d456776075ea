"""recommendations: the maths on hand-checkable matrices, the ledger fed by orders' events, the build's swap and
its triggers, and the read services."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations import algorithms


def baskets(rows: list[list[int]], n_items: int | None = None) -> sp.csr_matrix:
    r = [i for i, row in enumerate(rows) for _ in row]
    c = [j for row in rows for j in row]
    n = n_items or max(c) + 1
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n))


# Item 0 is a best seller every customer bought; 1 (a tent) and 2 (its pegs) are niche and always bought
# together; 3 and 4 are ordinary products bought with the best seller.
SHOP = [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 3], [0, 4], [0, 3], [0, 4], [0, 3, 4], [0], [0]]


def _recorder(calls: list[tuple[int, int]]):
    return lambda done, total: calls.append((done, total))


# ---------------------------------------------------------------- the maths


def test_chance_puts_the_truly_co_bought_niche_product_above_the_best_seller():
    topk = algorithms.related_items(baskets(SHOP), k=3, method="chance")
    assert topk.indices[1, 0] == 2  # the pegs first for the tent
    assert topk.indices[2, 0] == 1
    # by hand: 22 purchases, P(best seller) = 10/22; a tent buyer has 2 other purchases:
    # E = 3 (1 - (12/22)^2) = 2.107, score = (3 - E) / sqrt(E)
    expected = 3 * (1 - (12 / 22) ** 2)
    score = dict(zip(topk.indices[1].tolist(), topk.scores[1].tolist(), strict=True))
    assert score[0] == pytest.approx((3 - expected) / np.sqrt(expected), rel=1e-5)
    # the pegs: P = 3/22, E = 3 (1 - (19/22)^2)
    expected = 3 * (1 - (19 / 22) ** 2)
    assert score[2] == pytest.approx((3 - expected) / np.sqrt(expected), rel=1e-5)
    assert score[2] > 4 * score[0]


def test_cosine_ranks_the_best_seller_close_behind_chance_pushes_it_far_down():
    cosine = algorithms.related_items(baskets(SHOP), k=3, method="cosine")
    chance = algorithms.related_items(baskets(SHOP), k=3, method="chance")
    # cosine: tent . pegs = 3 / sqrt(3 * 3) = 1; tent . best seller = 3 / sqrt(3 * 10)
    assert cosine.indices[1].tolist()[:2] == [2, 0]
    assert cosine.scores[1, 1] == pytest.approx(3 / np.sqrt(30), rel=1e-5)
    assert cosine.scores[1, 1] / cosine.scores[1, 0] > 0.5
    assert chance.scores[1, 1] / chance.scores[1, 0] < 0.25
    # a best seller with no relation beyond chance: customers who bought a filler product and the best seller,
    # no more often than their purchases predict, get nothing from chance for a product bought by everyone alone
    only = algorithms.related_items(baskets([[0, 1], [0], [0], [0], [0, 2], [1, 2], [1, 2]]), k=2, method="chance")
    assert 0 not in only.indices[1].tolist()


def test_the_asymmetric_cosine_weighs_the_seeds_popularity_more_and_one_half_is_the_cosine():
    plain = algorithms.related_items(baskets(SHOP), k=3, method="cosine")
    half = algorithms.related_items(baskets(SHOP), k=3, method="cosine", alpha=0.5)
    np.testing.assert_array_equal(plain.indices, half.indices)
    np.testing.assert_allclose(plain.scores, half.scores, rtol=1e-6)
    asym = algorithms.related_items(baskets(SHOP), k=3, method="cosine", alpha=0.7)
    tent = dict(zip(asym.indices[1].tolist(), asym.scores[1].tolist(), strict=True))
    best = dict(zip(asym.indices[0].tolist(), asym.scores[0].tolist(), strict=True))
    # by hand: 3 customers bought the tent and the best seller, 3 bought the tent, 10 the best seller
    assert tent[0] == pytest.approx(3 / (3**0.7 * 10**0.3), rel=1e-5)
    assert best[1] == pytest.approx(3 / (10**0.7 * 3**0.3), rel=1e-5)
    # the best seller as a seed adds less to a customer's sums than the tent does (an IDF-like damping), and
    # less than under the plain cosine, where the pair scores the same both ways
    assert best[1] < 0.65 * tent[0]  # (3 / 10) ** 0.4
    assert best[1] < plain.scores[0, 0]
    assert asym.indices[1].tolist()[:2] == [2, 0]  # the pegs stay first for the tent
    with pytest.raises(ValueError, match="alpha"):
        algorithms.related_items(baskets(SHOP), method="cosine", alpha=1.5)


def test_products_with_fewer_buyers_than_min_count_are_dropped_without_changing_any_score():
    """The columns of products bought by fewer than min_count customers are cut before the matrix product (the
    build's speed with households as rows); the customers' sizes and the shares of the chance model still count
    every purchase, so each pair kept scores exactly as without the cut."""
    rng = np.random.default_rng(11)
    rows = [sorted(set(rng.zipf(1.3, size=rng.integers(1, 12)) % 150)) for _ in range(300)]
    matrix = baskets(rows, 150)
    b = algorithms.binary(matrix)
    co = (b.T @ b).toarray()
    buyers = algorithms.popularity(matrix)
    assert ((buyers > 0) & (buyers < 3)).sum() > 10, "enough rare products to be dropped"
    for method in algorithms.METHODS:
        every = algorithms.related_items(matrix, k=150, method=method, min_count=1, alpha=0.7)
        cut = algorithms.related_items(matrix, k=150, method=method, min_count=3, alpha=0.7, block_nnz=2000)
        for item in range(150):
            expected = [(j, s) for j, s in zip(every.indices[item], every.scores[item], strict=True)
                        if j >= 0 and co[item, j] >= 3]  # fmt: skip
            got = [(j, s) for j, s in zip(cut.indices[item], cut.scores[item], strict=True) if j >= 0]
            assert [j for j, _ in got] == [j for j, _ in expected], (method, item)
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)
        assert (cut.indices[buyers < 3] == -1).all()


def test_an_item_is_never_its_own_relation_and_missing_slots_are_minus_one():
    topk = algorithms.related_items(baskets([[0, 1], [0, 1], [2]]), k=4, method="cosine")
    assert topk.indices.shape == (3, 4)
    assert topk.indices.dtype == np.int32
    assert topk.scores.dtype == np.float32
    assert topk.indices[0].tolist() == [1, -1, -1, -1]
    assert topk.indices[2].tolist() == [-1, -1, -1, -1]  # bought alone: nothing related
    assert topk.scores[0, 0] == pytest.approx(1.0)
    assert topk.pairs == 2


def test_counts_and_duplicates_are_made_binary():
    counted = sp.csr_matrix(np.array([[5, 2, 0], [1, 0, 1], [3, 0, 0]], dtype=np.float64))
    assert algorithms.popularity(counted).tolist() == [3, 1, 1]
    once = algorithms.related_items(counted, k=2, method="cosine")
    assert once.scores[1, 0] == pytest.approx(1 / np.sqrt(3))


def test_blocks_give_the_same_answer_as_one_block_and_memory_is_measured():
    rng = np.random.default_rng(7)
    rows = [sorted(set(rng.zipf(1.6, size=rng.integers(1, 6)) % 300)) for _ in range(2000)]
    matrix = baskets(rows, 300)
    for method in algorithms.METHODS:
        whole = algorithms.related_items(matrix, k=10, method=method, block_nnz=1 << 40, measure=True)
        blocks: list[tuple[int, int]] = []
        small = algorithms.related_items(matrix, k=10, method=method, block_nnz=500, progress=_recorder(blocks))
        assert len(blocks) > 5
        assert blocks[-1][0] == blocks[-1][1]
        np.testing.assert_array_equal(whole.indices, small.indices)
        np.testing.assert_allclose(whole.scores, small.scores, rtol=1e-5)
        assert (whole.peak_bytes or 0) > 0


def test_the_cut_of_long_rows_keeps_exactly_the_top_k_of_a_dense_computation():
    rng = np.random.default_rng(3)
    dense = (rng.random((400, 700)) < 0.01 + rng.random(700) * 0.2).astype(np.float32)  # hundreds of candidates
    co = dense.T @ dense
    np.fill_diagonal(co, 0)
    n = dense.sum(axis=0)
    cos = co / np.sqrt(np.outer(n, n))
    assert n.min() > 0
    topk = algorithms.related_items(sp.csr_matrix(dense), k=5, method="cosine", block_nnz=20_000)
    assert ((co > 0).sum(axis=1) > algorithms.SAMPLE).mean() > 0.9, "most rows are long enough to be cut"
    for item in range(700):
        best = np.sort(cos[item])[::-1][:5]
        np.testing.assert_allclose(topk.scores[item], best, rtol=1e-5)


def test_min_count_drops_pairs_seen_once_and_bad_arguments_are_refused():
    topk = algorithms.related_items(baskets([[0, 1], [0, 1], [0, 2], [3]]), k=3, method="cosine", min_count=2)
    assert topk.indices[0].tolist() == [1, -1, -1]
    with pytest.raises(ValueError, match="method"):
        algorithms.related_items(baskets([[0, 1]]), method="jaccard")
    with pytest.raises(ValueError, match="k"):
        algorithms.related_items(baskets([[0, 1]]), k=0)


def test_an_empty_ledger_relates_nothing():
    topk = algorithms.related_items(sp.csr_matrix((0, 0)), k=5)
    assert topk.indices.shape == (0, 5)
    assert algorithms.popularity(sp.csr_matrix((3, 2))).tolist() == [0, 0]


# ---------------------------------------------------------------- the ledger, from orders' events


def _paid_event(order_id: int, user_id: int | None, product_ids: tuple[int, ...]):
    from orders.events import OrderPaid

    return OrderPaid(order_id=order_id, number=f"NW-{order_id}", user_id=user_id, product_ids=product_ids)


def _publish(*events) -> None:
    from kernel.bus import publish
    from kernel.db import atomic

    with atomic(module="orders"):
        for event in events:
            publish(event)


def _purchases() -> set[tuple[int, str, int]]:
    from recommendations.models import Purchase

    return set(Purchase.objects.values_list("order_id", "customer_key", "product_id"))


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_a_paid_order_counts_through_the_bus_and_a_cancelled_one_is_removed():
    from orders.events import OrderCancelled, OrderPlaced

    placed = OrderPlaced(order_id=1, number="NW-1", user_id=7, total=Decimal(10), currency="EUR", product_ids=(10,))
    _publish(placed)
    assert _purchases() == set(), "placed is not bought: nothing counts before payment"
    _publish(_paid_event(1, 7, (10, 11)), _paid_event(2, None, (10, 12)))
    assert _purchases() == {(1, "u7", 10), (1, "u7", 11), (2, "o2", 10), (2, "o2", 12)}
    _publish(OrderCancelled(order_id=2, number="NW-2", reason="changed my mind"))
    assert _purchases() == {(1, "u7", 10), (1, "u7", 11)}


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_events_twice_or_out_of_order_count_once_and_a_refund_stays_out():
    from orders.events import OrderCancelled, OrderPaid, OrderRefunded
    from recommendations import handlers
    from recommendations.models import BuildState

    paid = _paid_event(5, 3, (20, 21, 20))
    handlers.ledger_order_paid(paid)
    handlers.ledger_order_paid(paid)  # delivered twice
    handlers.ledger_order_paid(_paid_event(5, 3, (20, 21, 20)))  # a second event, another id
    assert _purchases() == {(5, "u3", 20), (5, "u3", 21)}
    assert BuildState.objects.get().paid_since_build == 1, "one paid order, however many events"
    handlers.ledger_order_refunded(OrderRefunded(order_id=5, number="NW-5"))
    handlers.ledger_order_paid(paid)  # a late redelivery does not bring it back
    assert _purchases() == set()
    handlers.ledger_order_cancelled(OrderCancelled(order_id=6, number="NW-6", reason="expired"))
    handlers.ledger_order_paid(_paid_event(6, 3, (20,)))  # void first (events out of order): stays out
    assert _purchases() == set()
    handlers.ledger_order_paid(OrderPaid(order_id=7, number="NW-7"))  # stored before OrderPaid had the basket
    assert _purchases() == set()
    assert BuildState.objects.get().paid_since_build == 1


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_an_order_left_pending_by_an_older_version_still_counts_when_paid():
    """Earlier versions kept a pending row per placed order: its payment takes the locked path, and counts once."""
    from recommendations import handlers
    from recommendations.models import BuildState, LedgerOrder

    LedgerOrder.objects.create(order_id=9, status=LedgerOrder.Status.PENDING)
    handlers.ledger_order_paid(_paid_event(9, None, (30, 31)))
    handlers.ledger_order_paid(_paid_event(9, None, (30, 31)))
    assert _purchases() == {(9, "o9", 30), (9, "o9", 31)}
    assert LedgerOrder.objects.get(order_id=9).status == LedgerOrder.Status.PAID
    assert BuildState.objects.get().paid_since_build == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_and_a_cancellation_racing_leave_the_order_out():
    """Ten orders, each paid (and its event delivered twice) and cancelled at the same moment by real threads: the
    void wins whichever commits first, and nothing of them counts."""
    from recommendations import ledger
    from recommendations.models import LedgerOrder
    from tests.concurrency import race

    def attempt(i: int) -> str:
        order_id = 100 + i // 3
        if i % 3 == 2:
            ledger.order_void(order_id=order_id)
        else:
            ledger.order_paid(order_id=order_id, user_id=i, product_ids=(1, 2))
        return "ok"

    assert race(attempt, threads=30) == ["ok"] * 30
    assert set(LedgerOrder.objects.values_list("status", flat=True)) == {LedgerOrder.Status.VOID}
    assert LedgerOrder.objects.count() == 10
    assert _purchases() == set()


# ---------------------------------------------------------------- the build and the read services


def _paid(order_id: int, user_id: int | None, *product_ids: int) -> None:
    from recommendations import ledger

    ledger.order_paid(order_id=order_id, user_id=user_id, product_ids=product_ids)


@pytest.fixture
def shop_ledger(settings):
    """The SHOP baskets as paid orders of customers 1..10, products 100 + item; the best seller is 100. Ten
    customers are too few for the default RECS_MIN_COUNT (3): every pair co-bought once counts here."""
    settings.RECS_REBUILD_EVERY = 0
    settings.RECS_MIN_COUNT = 1
    for customer, row in enumerate(SHOP, 1):
        _paid(customer, customer, *(100 + item for item in row))


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_the_build_writes_related_products_and_best_sellers_and_reports(shop_ledger):
    from recommendations import services
    from recommendations.models import BuildState

    calls: list[tuple[int, int]] = []
    report = services.recs_build(progress=_recorder(calls))
    assert (report.orders, report.customers, report.products) == (10, 10, 5)
    assert report.pairs > 0
    assert report.peak_memory_bytes > 0
    assert report.seconds > 0
    assert calls
    assert calls[-1][0] == calls[-1][1]
    assert services.related_products(product_id=101)[0] == 102
    assert 101 not in services.related_products(product_id=101)
    assert services.best_sellers(category_id=None)[0] == 100
    state = BuildState.objects.get()
    assert (state.pairs, state.paid_since_build, state.method) == (report.pairs, 0, "chance")


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_the_cosine_build_is_the_evaluated_model_and_slots_rank_as_the_evaluation_does(settings):
    """RECS_METHOD=cosine (asymmetric, alpha 0.7, min count 3) is what the build stores, and summing the stored
    scores of a customer's products (related_to_products, the slots) ranks as recs_evaluate's scorer does."""
    import scipy.sparse as sp

    from recommendations import build, evaluation, services
    from recommendations.models import Related

    settings.RECS_REBUILD_EVERY = 0
    for customer, row in enumerate(SHOP, 1):
        _paid(customer, customer, *(100 + item for item in row))
    assert (settings.RECS_COSINE_ALPHA, settings.RECS_MIN_COUNT) == (0.7, 3)
    settings.RECS_METHOD = "cosine"
    services.recs_build()
    assert services.related_products(product_id=101) == (102, 100)
    assert services.related_products(product_id=103) == (100,)  # 103 and 104: one customer bought both
    stored = dict(Related.objects.filter(product_id=101).values_list("related_id", "score"))
    assert stored[100] == pytest.approx(3 / (3**0.7 * 10**0.3), rel=1e-5)

    matrix, product_ids, _ = build.ledger_matrix()
    top = algorithms.related_items(
        matrix, k=settings.RECS_K, method=settings.RECS_METHOD, min_count=settings.RECS_MIN_COUNT,
        alpha=settings.RECS_COSINE_ALPHA,
    )  # fmt: skip
    scorer = evaluation.item_to_item_scorer(
        evaluation.related_matrix(top.indices, top.scores, matrix.shape[1]), algorithms.popularity(matrix)
    )
    seeds = [101, 103]
    scores = scorer(sp.csr_matrix(np.isin(product_ids, seeds).astype(np.float32)[None, :]))[0]
    ranked = [int(product_ids[i]) for i in np.argsort(-scores, kind="stable")
              if scores[i] > 1e-3 and product_ids[i] not in seeds]  # fmt: skip
    assert ranked == [100, 102]
    assert list(services.related_to_products(product_ids=seeds)) == ranked


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_by_default_a_best_seller_does_not_crowd_a_niche_products_list(settings):
    """Smith and Linden's correction is the default: a tent's list starts with its pegs, not with the product
    everybody buys, which the co-buyer count (and so the cosine) puts first."""
    from recommendations import services

    settings.RECS_REBUILD_EVERY = 0
    for customer in range(1, 21):  # everyone buys 200; 1-6 a tent (201), 1-3 its pegs (202); the others a filler
        extra = (201, 202) if customer <= 3 else (201,) if customer <= 6 else (203 + customer % 2,)
        _paid(customer, customer, 200, *extra)
    assert settings.RECS_METHOD == "chance"
    services.recs_build()
    assert services.related_products(product_id=201)[0] == 202
    settings.RECS_METHOD = "cosine"
    services.recs_build()
    assert services.related_products(product_id=201)[0] == 200, "the contrast: the cosine leads with the best seller"


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_related_to_products_sums_over_the_seeds_and_leaves_them_out(shop_ledger):
    from recommendations import services

    services.recs_build()
    together = services.related_to_products(product_ids=[101, 103])
    assert 101 not in together
    assert 103 not in together
    # the pegs are bought with the tent far more often than chance predicts; the best seller, bought by everyone,
    # is related to both seeds a little, its two scores summed
    assert together == (102, 100, 104)
    assert services.related_to_products(product_ids=[]) == ()


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_best_sellers_per_category_count_in_the_categories_above(settings):
    from recommendations import services
    from tests.factories import make_category, make_product

    settings.RECS_REBUILD_EVERY = 0
    outdoor = make_category("Outdoor")
    tents = make_category("Tents", parent=outdoor)
    kitchen = make_category("Kitchen")
    tent, stove, pan = make_product("Tent", tents), make_product("Stove", outdoor), make_product("Pan", kitchen)
    for order_id in range(1, 4):
        _paid(order_id, order_id, tent.pk, pan.pk)
    _paid(9, 9, stove.pk)
    services.recs_build()
    assert services.best_sellers(category_id=tents.pk) == (tent.pk,)
    assert services.best_sellers(category_id=outdoor.pk) == (tent.pk, stove.pk)
    assert services.best_sellers(category_id=kitchen.pk) == (pan.pk,)
    assert services.best_sellers(category_id=None)[:2] == tuple(sorted((tent.pk, pan.pk)))
    assert services.best_sellers(category_id=outdoor.pk, limit=0) == ()


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_customer_products_latest_first_each_once_without_cancelled_orders(settings):
    from datetime import timedelta

    from django.utils import timezone

    from recommendations import ledger, services

    settings.RECS_REBUILD_EVERY = 0
    now = timezone.now()
    for order_id, products, days in ((1, (10, 11), 3), (2, (12, 10), 1), (3, (13,), 2), (4, (14,), 0)):
        ledger.order_paid(order_id=order_id, user_id=8, product_ids=products, paid_at=now - timedelta(days=days))
    ledger.order_void(order_id=4)
    _paid(5, 9, 99)
    assert services.customer_products(user_id=8) == (10, 12, 13, 11)
    assert services.customer_products(user_id=8, limit=2) == (10, 12)
    assert services.customer_products(user_id=1) == ()


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_a_build_that_crashes_mid_write_leaves_the_old_tables(shop_ledger, monkeypatch):
    from django.db.models.query import QuerySet

    from recommendations import services
    from recommendations.models import BuildState, Related

    services.recs_build()
    before = list(Related.objects.values_list("product_id", "related_id", "rank"))
    _paid(50, 50, 101, 104)
    real = QuerySet.bulk_create

    def crash(self, objs, *args, **kwargs):
        if self.model is Related:
            real(self, objs[:1], *args, **kwargs)  # a part of the new table is written...
            raise MemoryError("killed mid-write")  # ...then the build dies
        return real(self, objs, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "bulk_create", crash)
    with pytest.raises(MemoryError):
        services.recs_build()
    assert list(Related.objects.values_list("product_id", "related_id", "rank")) == before
    assert services.related_products(product_id=101)[0] == 102
    assert BuildState.objects.get().lease_until is None, "the lease is given back: the next build runs"
    monkeypatch.setattr(QuerySet, "bulk_create", real)
    assert services.recs_build().orders == 11


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_a_second_build_while_one_runs_does_nothing(shop_ledger):
    from datetime import timedelta

    from django.utils import timezone

    from recommendations import services, tasks
    from recommendations.models import BuildState, Related

    BuildState.objects.update_or_create(pk=1, defaults={"lease_until": timezone.now() + timedelta(minutes=5)})
    with pytest.raises(services.BuildBusy):
        services.recs_build()
    assert tasks.nightly_build() == "busy"
    assert not Related.objects.exists()
    BuildState.objects.filter(pk=1).update(lease_until=timezone.now() - timedelta(seconds=1))  # a dead build's
    assert "pairs" in tasks.nightly_build()
    assert Related.objects.exists()


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_a_rebuild_follows_every_n_paid_orders(settings):
    from recommendations import services, tasks
    from recommendations.models import BuildState, Related

    settings.RECS_REBUILD_EVERY = 3
    _publish(_paid_event(1, 1, (1, 2)), _paid_event(2, 2, (1, 2)))
    assert not Related.objects.exists(), "two paid orders: not due yet"
    assert tasks.rebuild_if_due() == "not due"
    _publish(_paid_event(3, 3, (1, 2)))
    assert services.related_products(product_id=1) == (2,), "the third paid order rebuilt"
    state = BuildState.objects.get()
    assert (state.paid_since_build, state.orders) == (0, 3)
    assert tasks.rebuild_if_due() == "not due", "a second trigger finds nothing to do"
    _publish(_paid_event(4, 4, (1, 2)))
    assert BuildState.objects.get().paid_since_build == 1


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "older-sqlite"])
def test_the_paid_orders_counter_counts_with_and_without_returning(settings, monkeypatch, returning):
    from recommendations import ledger
    from recommendations.models import BuildState

    monkeypatch.setattr(ledger, "_can_return", lambda connection: returning)
    settings.RECS_REBUILD_EVERY = 0
    _publish(_paid_event(1, 1, (1, 2)), _paid_event(2, 2, (1, 3)), _paid_event(3, None, (4,)))
    assert BuildState.objects.get().paid_since_build == 3


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_a_rush_of_orders_rebuilds_at_most_once_per_interval(settings):
    from datetime import timedelta

    from recommendations import tasks
    from recommendations.models import BuildState

    settings.RECS_REBUILD_EVERY = 2
    settings.RECS_REBUILD_MIN_SECONDS = 900
    _publish(_paid_event(1, 1, (1, 2)), _paid_event(2, 2, (1, 2)))
    first = BuildState.objects.get()
    assert (first.orders, first.paid_since_build) == (2, 0), "the first build comes at once"
    _publish(_paid_event(3, 3, (1, 2)), _paid_event(4, 4, (1, 2)), _paid_event(5, 5, (1, 3)))
    assert BuildState.objects.get().orders == 2, "due by count, but the last build is too recent"
    assert tasks.rebuild_if_due() == "not due"
    BuildState.objects.update(built_at=first.built_at - timedelta(seconds=901))
    assert tasks.rebuild_if_due() != "not due", "beat's next call builds the orders held back"
    assert BuildState.objects.get().orders == 5


def test_the_nightly_build_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["recommendations-nightly-build"]
    assert entry["task"] == "recommendations.nightly_build"
    assert entry["schedule"].hour == {3}
    retry = settings.CELERY_BEAT_SCHEDULE["recommendations-rebuild-if-due"]
    assert retry["task"] == "recommendations.rebuild_if_due"
    assert retry["schedule"] == settings.RECS_REBUILD_MIN_SECONDS


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_the_recs_build_command_prints_its_report_and_refuses_while_one_runs(shop_ledger, capsys):
    from datetime import timedelta

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    from recommendations.models import BuildState

    call_command("recs_build")
    out = capsys.readouterr()
    assert "recommendations built: 10 orders, 10 customers, 5 products" in out.out
    assert "MiB" in out.out
    assert "related products (chance)" in out.err  # the progress bar
    BuildState.objects.filter(pk=1).update(lease_until=timezone.now() + timedelta(minutes=5))
    with pytest.raises(CommandError, match="another build"):
        call_command("recs_build", "--no-progress")


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_reads_say_recommendations_are_unavailable_when_their_database_is_down(monkeypatch):
    from django.db import OperationalError
    from django.db.models.query import QuerySet

    from recommendations import services

    def down(self):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(QuerySet, "_fetch_all", down)
    for read in (
        lambda: services.related_products(product_id=1),
        lambda: services.related_to_products(product_ids=[1, 2]),
        lambda: services.best_sellers(category_id=None),
        lambda: services.customer_products(user_id=1),
    ):
        with pytest.raises(services.RecommendationsUnavailable, match="Connection refused"):
            read()


@pytest.mark.modules
@pytest.mark.django_db(transaction=True)
def test_each_read_is_one_query_whatever_the_number_of_seeds(shop_ledger, django_assert_num_queries):
    from django.db import connections

    from kernel.db import db_for_module
    from recommendations import services

    services.recs_build()
    db = connections[db_for_module("recommendations")]  # the module's own database, if it has one
    for seeds in ([101], [100, 101, 102, 103, 104]):
        with django_assert_num_queries(1, connection=db):
            services.related_to_products(product_ids=seeds)
    with django_assert_num_queries(1, connection=db):
        services.related_products(product_id=101)
    with django_assert_num_queries(1, connection=db):
        services.best_sellers(category_id=None)
    with django_assert_num_queries(1, connection=db):
        services.customer_products(user_id=1)
