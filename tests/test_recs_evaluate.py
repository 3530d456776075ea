"""manage.py recs_evaluate: the metrics, the split by time, the protocol and the command on both datasets."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from io import StringIO

import factory
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommendations import algorithms, evaluation


def interactions(rows):
    """(user, item, basket, time) tuples as Interactions."""
    users, items, baskets, times = (np.asarray(column) for column in zip(*rows, strict=True))
    return evaluation.Interactions(users=users, items=items, baskets=baskets, times=times.astype(float))


# ---------------------------------------------------------------- metrics, checked by hand


def test_hit_rate_is_one_when_any_held_out_item_is_in_the_top_k():
    assert evaluation.hit_at_k([5, 1, 7], [7], k=3) == 1.0
    assert evaluation.hit_at_k([5, 1, 7], [7], k=2) == 0.0
    assert evaluation.hit_at_k([5, 1, 7], [], k=3) == 0.0


def test_ndcg_uses_binary_relevance_and_an_ideal_over_min_k_and_the_basket():
    # Relevant at ranks 2 and 3 of 3: DCG = 1/log2(3) + 1/log2(4); ideal for 2 relevant = 1 + 1/log2(3).
    assert evaluation.ndcg_at_k([5, 1, 7], [1, 7], k=3) == pytest.approx(
        (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    )
    # A basket of 5 items, k = 2, the first place a hit: the ideal counts only 2 places (min(k, |basket|)).
    assert evaluation.ndcg_at_k([1, 9], [1, 2, 3, 4, 5], k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert evaluation.ndcg_at_k([1, 2], [1, 2], k=2) == pytest.approx(1.0)
    assert evaluation.ndcg_at_k([8, 9], [1, 2], k=2) == 0.0


def test_the_paired_difference_gives_the_gap_and_an_interval_that_shrinks_with_more_baskets():
    a = np.asarray([1.0, 0.0, 1.0, 1.0])
    b = np.asarray([0.0, 0.0, 1.0, 0.0])
    gap, half_width = evaluation.paired_difference(a, b)
    assert gap == pytest.approx(0.5)
    assert half_width == pytest.approx(1.96 * np.std([1, 0, 0, 1], ddof=1) / 2)
    _, wider_sample = evaluation.paired_difference(np.tile(a, 100), np.tile(b, 100))
    assert wider_sample < half_width / 5


# ---------------------------------------------------------------- the split by time


def test_time_split_holds_out_whole_baskets_after_the_cut_of_customers_with_history():
    data = interactions(
        [
            ("ann", 10, 1, 0),
            ("ann", 11, 1, 0),
            ("bob", 10, 2, 1),
            ("bob", 12, 2, 1),
            # Ann's basket 3 starts before the cut and ends after it: it stays whole in training.
            ("ann", 12, 3, 4),
            ("ann", 13, 3, 6),
            # Held out: Bob's basket with a known item and one nobody bought in training.
            ("bob", 11, 4, 7),
            ("bob", 99, 4, 7),
            # Cid has no history: his basket cannot be evaluated.
            ("cid", 10, 5, 8),
        ]
    )
    split = evaluation.time_split(data, cut=5)

    assert list(split.user_keys) == ["ann", "bob"]
    assert list(split.item_keys) == [10, 11, 12, 13]
    assert split.train.toarray().tolist() == [[1, 1, 1, 1], [1, 0, 1, 0]]
    assert split.train_lines == 6
    assert [split.user_keys[row] for row in split.test_rows] == ["bob"]
    assert [split.item_keys[items].tolist() for items in split.test_items] == [[11]]
    assert split.test_sizes.tolist() == [2]  # item 99 counts in the basket: every model misses it alike
    # Days from each customer's last purchase of an item to the cut (Ann's 13 at time 6 is her latest).
    assert split.age_days[0, 3] == pytest.approx(0.0, abs=0.01)
    assert split.age_days[1, 0] == pytest.approx(4 / 86400, abs=0.01)


def test_a_half_life_weighs_what_the_customer_bought_lately_above_what_they_bought_long_ago():
    day = 86400
    # Ann bought x a year ago and y last week; in the held-out basket she buys what goes with y.
    data = interactions(
        [
            ("ann", "x", 1, 0),
            ("ann", "y", 2, 358 * day),
            ("bob", "x", 3, 0),
            ("bob", "a", 3, 0),
            ("cid", "y", 4, 0),
            ("cid", "b", 4, 0),
            ("ann", "b", 5, 366 * day),
        ]
    )
    split = evaluation.time_split(data, cut=365 * day)
    a, b, x, y = (int(np.searchsorted(split.item_keys, key)) for key in "abxy")
    indices, scores = np.full((4, 1), -1, dtype=np.int32), np.zeros((4, 1), dtype=np.float32)
    indices[x], scores[x] = a, 2.0  # x goes with a, strongly
    indices[y], scores[y] = b, 1.0  # y goes with b
    related = evaluation.related_matrix(indices, scores, 4)
    scorer = evaluation.item_to_item_scorer(related, algorithms.popularity(split.train))
    # Unweighted, x's stronger relation puts a first and b misses the top 1; a 30-day half-life turns it round.
    assert evaluation.evaluate(split, scorer, name="flat", k=1).hit_rate == 0.0
    assert evaluation.evaluate(split, scorer, name="recent", k=1, half_life_days=30).hit_rate == 1.0


def test_the_protocol_new_drops_items_bought_in_training_and_baskets_with_nothing_new():
    data = interactions(
        [
            ("ann", 1, 1, 0),
            ("ann", 2, 1, 0),
            ("bob", 3, 2, 0),
            ("ann", 1, 3, 9),  # only a repeat: out under "new"
            ("bob", 3, 4, 9),  # a repeat and a new item
            ("bob", 1, 4, 9),
        ]
    )
    split = evaluation.time_split(data, cut=5)
    repeat = evaluation.held_out(split, protocol="repeat")
    new = evaluation.held_out(split, protocol="new")

    assert [sorted(split.item_keys[i].tolist()) for i in repeat.items] == [[1], [1, 3]]
    assert [split.item_keys[i].tolist() for i in new.items] == [[1]]
    assert new.ideal_sizes.tolist() == [1]


def test_evaluate_ranks_every_item_and_reports_the_hand_checked_metrics():
    data = interactions(
        [
            ("u1", "a", 1, 0),
            ("u1", "c", 1, 0),
            ("u2", "a", 2, 0),
            ("u2", "b", 2, 0),
            ("u3", "a", 3, 0),
            ("u3", "d", 3, 0),
            ("u3", "e", 3, 0),
            ("u1", "b", 4, 9),
            ("u2", "e", 5, 9),
            ("u2", "d", 5, 9),
        ]
    )
    split = evaluation.time_split(data, cut=5)
    descending = np.asarray([5, 4, 3, 2, 1], dtype=np.float32)  # a > b > c > d > e for everyone

    def scorer(seeds):
        return np.tile(descending, (seeds.shape[0], 1))

    result = evaluation.evaluate(split, scorer, name="fixed", k=2, protocol="new")
    # "new": u1 bought a, c -> list [b, d], b held out at rank 1: hit, NDCG 1.
    # u2 bought a, b -> list [c, d], held out {d, e}: d at rank 2, ideal over min(2, 2) places.
    assert result.baskets == 2
    assert result.hit_rate == pytest.approx(1.0)
    assert result.ndcg == pytest.approx((1.0 + (1 / math.log2(3)) / (1 + 1 / math.log2(3))) / 2)
    assert result.coverage == pytest.approx(3 / 5)  # b, c, d shown, of five items

    repeat = evaluation.evaluate(split, scorer, name="fixed", k=2, protocol="repeat")
    # Repeats allowed: both lists are [a, b]; u1's b at rank 2 (ideal: one place), u2 has no hit.
    assert repeat.hit_rate == pytest.approx(0.5)
    assert repeat.ndcg == pytest.approx((1 / math.log2(3)) / 2)
    assert repeat.coverage == pytest.approx(2 / 5)


def synthetic_taste(*, customers=300, groups=6, items_per_group=12, staples=5, seed=7):
    """Customers who each like one group of items and all buy a few best-selling staples: the group is what
    predicts the next basket's new items, which only a model of co-purchases can see."""
    rng = np.random.default_rng(seed)
    rows, basket = [], 0
    for customer in range(customers):
        group = customer % groups
        liked = np.arange(items_per_group) + staples + group * items_per_group
        for week in range(10):
            basket += 1
            picks = set(rng.choice(liked, size=3, replace=False).tolist())
            picks |= set(rng.choice(staples, size=2, replace=False).tolist())
            rows.extend((customer, item, basket, week) for item in picks)
    return interactions(rows)


def test_item_to_item_beats_popularity_when_taste_predicts_the_next_basket():
    data = synthetic_taste()
    split = evaluation.time_split(data, cut=evaluation.quantile_cut(data.times, 0.8))
    pop = algorithms.popularity(split.train)
    baseline = evaluation.evaluate(split, evaluation.popularity_scorer(pop), name="popularity", k=5)
    for method in ("cosine", "chance"):
        top = algorithms.related_items(split.train, k=10, method=method)
        related = evaluation.related_matrix(top.indices, top.scores, split.train.shape[1])
        model = evaluation.evaluate(split, evaluation.item_to_item_scorer(related, pop), name=method, k=5)
        assert model.hit_rate > baseline.hit_rate + 0.2, method
        assert model.ndcg > baseline.ndcg + 0.1, method
        assert model.coverage > baseline.coverage, method


# ---------------------------------------------------------------- the command


def test_the_command_refuses_bad_settings_with_a_clear_message():
    with pytest.raises(CommandError, match="--k must be between 1 and 1000"):
        call_command("recs_evaluate", "--dataset", "completejourney", "--k", "0", "--no-progress")
    with pytest.raises(CommandError, match="--test-share"):
        call_command("recs_evaluate", "--dataset", "completejourney", "--test-share", "1.5", "--no-progress")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "recommendations.Purchase"

    order_id = factory.Sequence(lambda n: n + 1)
    customer_key = factory.LazyAttribute(lambda p: f"u{p.user_id}")
    user_id = 1
    product_id = 1
    paid_at = factory.LazyFunction(lambda: datetime(2026, 1, 1, tzinfo=UTC))


def ledger_order(*, order_id: int, user_id: int, product_ids, day: int) -> None:
    for product_id in product_ids:
        PurchaseFactory(
            order_id=order_id,
            user_id=user_id,
            product_id=product_id,
            paid_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
        )


@pytest.mark.modules
@pytest.mark.django_db(databases="__all__")
def test_the_command_on_the_shop_ledger_prints_the_three_models_side_by_side():
    # Two tastes: tents with sleeping bags and mats (products 1-3), kettles with mugs and teapots (4-6), and a map (7)
    # that everyone buys. The kettle side sells more, so popularity pushes kettles on every customer.
    order = 0
    for user in range(1, 17):
        order += 1
        ledger_order(order_id=order, user_id=user, product_ids=[1, 2, 3, 7] if user <= 6 else [4, 5, 6, 7], day=0)
    # Four later customers: a first order in training, the second, held out, is another product of their taste.
    for user, first, second in ((17, 1, 2), (18, 4, 5), (19, 1, 3), (20, 4, 6)):
        ledger_order(order_id=order + user, user_id=user, product_ids=[first, 7], day=1)
        ledger_order(order_id=order + user + 10, user_id=user, product_ids=[second], day=10)
    out = StringIO()
    call_command("recs_evaluate", "--dataset", "shop", "--k", "2", "--test-share", "0.05", "--no-progress", stdout=out)
    text = out.getvalue()

    assert "shop (test split): 76 lines, 20 customers and 7 items in training" in text
    assert "4 held-out baskets of 4 customers" in text
    hit = {}
    for model in ("item-to-item (cosine)", "item-to-item (chance)", "popularity"):
        row = next((line for line in text.splitlines() if line.startswith(model)), None)
        assert row is not None, text
        hit[model] = float(row[len(model) :].split()[0])
    # Item-to-item finds every customer's next product of their taste; popularity only the kettle buyers'.
    assert hit == {"item-to-item (cosine)": 1.0, "item-to-item (chance)": 1.0, "popularity": 0.5}, text
    assert "items bought in training excluded" in text
    assert "hit +0.5000" in next(line for line in text.splitlines() if line.startswith("item-to-item (cosine)"))


@pytest.mark.modules
@pytest.mark.django_db(databases="__all__")
def test_the_command_on_an_empty_ledger_says_there_is_nothing_to_evaluate():
    with pytest.raises(CommandError, match="no purchase lines"):
        call_command("recs_evaluate", "--dataset", "shop", "--no-progress")


def test_the_complete_journey_data_loads_every_line_with_its_time():
    from recommendations.management.commands.recs_evaluate import load_completejourney

    data = load_completejourney()
    assert len(data) == 1_469_307
    assert len(np.unique(data.users)) == 2_469
    assert len(np.unique(data.baskets)) == 155_848
    first, last = datetime.fromtimestamp(data.times.min(), tz=UTC), datetime.fromtimestamp(data.times.max(), tz=UTC)
    assert first.year == 2017
    assert (last - first).days <= 366


def test_a_popularity_prior_lets_a_best_seller_outrank_a_weak_relation():
    related = evaluation.related_matrix(
        np.asarray([[1], [-1], [-1]], dtype=np.int32), np.asarray([[0.2], [0], [0]], dtype=np.float32), 3
    )
    popularity = np.asarray([1, 1, 50])
    seeds = evaluation.sp.csr_matrix(np.asarray([[1.0, 0.0, 0.0]], dtype=np.float32))
    plain = evaluation.item_to_item_scorer(related, popularity)(seeds)[0]
    blended = evaluation.item_to_item_scorer(related, popularity, prior=2.0)(seeds)[0]
    assert plain[1] > plain[2]  # the related item first, the best seller only breaks ties
    assert blended[2] > blended[1]  # the related item's normalised 1.0 is below 2 x the best seller's share
