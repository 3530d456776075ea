"""Past orders for the demo shop, by customers with a taste of their own that the recommendations are not told.

Each demo customer has favourite kinds of product and favourite brands (affinities drawn from a Dirichlet
distribution, so most customers care for a few), a price band (a log-normal centre: some buy cheap, some dear),
and a number of past orders. Products have a popularity that follows a Zipf law (the n-th most popular is bought
about 1/n as often as the first). An order starts with an item drawn from the customer's taste, then adds up to
four more: mostly what goes with what is already in the basket (a tent and a sleeping bag, a frying pan and a
chef's knife: COMPLEMENTS, each product with a favourite partner of the other kind, of its own brand when there is
one), sometimes the same thing in a second colour, sometimes a product of the same brand's line, sometimes
anything at all (noise). Everything is drawn from generators seeded with `seed`: the same seed and day give the
same plan, and the orders' keys make a second run add nothing.

The plan is written through the public faces of accounts (the customers) and orders (orders_demo_history, which
publishes the orders' events: recommendations learns from those, as it would in production).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.services import demo_customer_ensure, demo_customers_ensure
from catalog.services import DemoProduct, DemoVariant, demo_catalog_products
from orders.services import HistoryLine, HistoryOrder, orders_demo_history

DEMO_CUSTOMER_EMAIL = "customer@example.com"
HISTORY_DAYS = 180  # orders spread over the last six months
BASKET_SIZES = (1, 2, 3, 4, 5)
BASKET_WEIGHTS = (0.25, 0.30, 0.22, 0.13, 0.10)
ZIPF_EXPONENT = 1.0
P_COMPLEMENT = 0.7  # a further item goes with one already in the basket
P_OTHER_COLOUR = 0.05  # the same product again, in another colour
P_SAME_LINE = 0.08  # another product of the same brand and kind
P_NOISE = 0.07  # anything, by popularity only
# (the rest: another item to the customer's taste)
P_PARTNER = 0.85  # a complement is the product's favourite partner of that kind, else any of that kind

# What goes with what, by the demo catalog's product nouns (catalog.demo.KINDS).
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "Two-person tent": ("Sleeping bag", "Camping stove", "Headlamp"),
    "Sleeping bag": ("Two-person tent", "Headlamp"),
    "Camping stove": ("Two-person tent", "Headlamp"),
    "Trekking poles": ("Trail shoe", "Headlamp"),
    "Headlamp": ("Two-person tent", "Sleeping bag"),
    "Frying pan": ("Chef's knife", "Saucepan"),
    "Saucepan": ("Frying pan", "Casserole"),
    "Sauté pan": ("Chef's knife",),
    "Wok": ("Santoku knife",),
    "Casserole": ("Saucepan",),
    "Chef's knife": ("Frying pan", "Paring knife"),
    "Santoku knife": ("Wok", "Paring knife"),
    "Bread knife": ("Chef's knife",),
    "Paring knife": ("Chef's knife",),
    "Wireless headphones": ("USB-C charger", "Charging cable"),
    "Noise-cancelling headphones": ("Power bank", "Charging cable"),
    "Studio headphones": ("Charging cable",),
    "Wireless earbuds": ("Wireless charging pad", "Charging cable"),
    "Sport earbuds": ("Running shoe", "Power bank"),
    "Bluetooth speaker": ("Power bank",),
    "Smart speaker": ("Table lamp",),
    "Soundbar": ("Bookshelf speaker",),
    "Running shoe": ("Sport earbuds", "Tank top", "Foam roller"),
    "Trail shoe": ("Trekking poles", "Rain jacket"),
    "Leather boot": ("Jeans",),
    "Yoga mat": ("Foam roller", "Resistance bands"),
    "Dumbbell set": ("Kettlebell", "Resistance bands"),
    "Kettlebell": ("Dumbbell set",),
    "Foam roller": ("Yoga mat",),
    "Resistance bands": ("Yoga mat",),
    "Cushion cover": ("Throw blanket", "Floor lamp"),
    "Throw blanket": ("Cushion cover",),
    "Table lamp": ("Cushion cover",),
    "Floor lamp": ("Throw blanket",),
    "Planter": ("Watering can", "Pruning shears"),
    "Raised bed": ("Garden hose", "Pruning shears"),
    "Watering can": ("Planter",),
    "Garden hose": ("Raised bed",),
    "Jeans": ("T-shirt", "Leather boot"),
    "Chinos": ("Polo shirt",),
    "Rain jacket": ("Trail shoe",),
    "Parka": ("Jeans",),
    "Wrap dress": ("Sneaker",),
    "Sundress": ("Sneaker",),
}


@dataclass(frozen=True)
class PlannedOrder:
    key: str
    email: str
    full_name: str
    placed_at: datetime
    lines: tuple[tuple[DemoProduct, DemoVariant], ...]


@dataclass(frozen=True)
class DemoOrdersResult:
    customers: int
    orders_created: int
    orders_existing: int
    lines: int
    demo_email: str
    demo_password: str


FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Klara", "Leon", "Mia",
         "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wim", "Yara", "Zoe"]  # fmt: skip
LAST = ["Berg", "Costa", "Dahl", "Eder", "Fischer", "Gomez", "Horn", "Ivanova", "Jensen", "Keller", "Lund", "Moreau",
        "Novak", "Ortiz", "Petit", "Quinn", "Rossi", "Silva", "Torres", "Urban", "Vogel", "Weber"]  # fmt: skip


def _dirichlet(rng: random.Random, size: int, alpha: float) -> list[float]:
    draws = [rng.gammavariate(alpha, 1.0) for _ in range(size)]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


class _Taste:
    """The hidden model: popularity, complements and each customer's preferences over the catalog."""

    def __init__(self, products: Sequence[DemoProduct], seed: int) -> None:
        self.products = list(products)
        rng = random.Random(f"demo-orders:{seed}:catalog")
        order = list(range(len(self.products)))
        rng.shuffle(order)
        self.popularity = [0.0] * len(self.products)
        for rank, index in enumerate(order):
            self.popularity[index] = 1.0 / (rank + 1) ** ZIPF_EXPONENT
        self.kinds = sorted({p.kind for p in self.products})
        self.brands = sorted({p.brand for p in self.products})
        self.by_noun: dict[str, list[int]] = {}
        self.by_line: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(self.products):
            self.by_noun.setdefault(p.noun, []).append(i)
            self.by_line.setdefault((p.brand, p.kind), []).append(i)
        self.popular_cum = list(itertools.accumulate(self.popularity))
        # each product's favourite partner of each complementary noun: its own brand's when there is one
        self.partner: dict[tuple[int, str], int] = {}
        for i, p in enumerate(self.products):
            for noun in COMPLEMENTS.get(p.noun, ()):
                candidates = self.by_noun.get(noun, [])
                if not candidates:
                    continue
                same_brand = [j for j in candidates if self.products[j].brand == p.brand]
                pool = same_brand or candidates
                self.partner[(i, noun)] = rng.choices(pool, weights=[self.popularity[j] + 0.05 for j in pool])[0]

    def customer_weights(self, rng: random.Random, favourite_kinds: Sequence[str] = ()) -> list[float]:
        kinds = dict(zip(self.kinds, _dirichlet(rng, len(self.kinds), 0.3), strict=True))
        for kind in favourite_kinds:
            kinds[kind] = kinds.get(kind, 0.0) + 1.0
        brands = dict(zip(self.brands, _dirichlet(rng, len(self.brands), 0.3), strict=True))
        centre = rng.gauss(math.log(60), 0.8)  # the price band: log-normal, around 60 EUR
        weights = []
        for i, p in enumerate(self.products):
            price = float(p.variants[0].price) or 1.0
            band = math.exp(-((math.log(price) - centre) ** 2) / (2 * 0.7**2))
            weights.append(self.popularity[i] * kinds[p.kind] * (0.2 + brands[p.brand] * len(self.brands)) * band)
        return list(itertools.accumulate(weights))

    def draw(self, rng: random.Random, cum: list[float]) -> int:
        return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)

    def basket(self, rng: random.Random, cum: list[float]) -> list[tuple[int, DemoVariant]]:
        size = rng.choices(BASKET_SIZES, weights=BASKET_WEIGHTS)[0]
        first = self.draw(rng, cum)
        items = [(first, rng.choice(self.products[first].variants))]
        chosen = {first}
        for _ in range(size * 3):  # a few tries: a draw may repeat what is in the basket
            if len(items) >= size:
                break
            roll = rng.random()
            if roll < P_OTHER_COLOUR:
                index, _ = rng.choice(items)
                others = [v for v in self.products[index].variants if v.id not in {var.id for _, var in items}]
                if others:
                    items.append((index, rng.choice(others)))
                continue
            if roll < P_OTHER_COLOUR + P_COMPLEMENT:
                anchor = rng.choice(sorted(chosen))
                nouns = [n for n in COMPLEMENTS.get(self.products[anchor].noun, ()) if (anchor, n) in self.partner]
                if not nouns:
                    continue
                noun = rng.choice(nouns)
                pick = self.partner[(anchor, noun)] if rng.random() < P_PARTNER else rng.choice(self.by_noun[noun])
            elif roll < P_OTHER_COLOUR + P_COMPLEMENT + P_SAME_LINE:
                anchor = rng.choice(sorted(chosen))
                p = self.products[anchor]
                pick = rng.choice(self.by_line[(p.brand, p.kind)])
            elif roll < P_OTHER_COLOUR + P_COMPLEMENT + P_SAME_LINE + P_NOISE:
                pick = self.draw(rng, self.popular_cum)
            else:
                pick = self.draw(rng, cum)
            if pick not in chosen:
                chosen.add(pick)
                items.append((pick, rng.choice(self.products[pick].variants)))
        return items


def demo_order_plan(
    products: Sequence[DemoProduct], *, customers: int, orders: int, seed: int, today: datetime,
    demo_email: str = DEMO_CUSTOMER_EMAIL,
) -> list[PlannedOrder]:  # fmt: skip
    """Who bought what when: `orders` past orders of `customers` customers (a fifth of the orders by guests), the
    first customer being the demo account (a camper and a cook). Pure: no database."""
    if not products or orders <= 0:
        return []
    taste = _Taste(products, seed)
    rng = random.Random(f"demo-orders:{seed}:customers")
    people = [(demo_email, "Demo Customer")]
    for n in range(1, customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append((f"{first}.{last}.{n}@demo.example".lower(), f"{first} {last}"))
    activity = [rng.gammavariate(1.5, 1.0) for _ in people]  # some customers buy often, most now and then
    activity[0] = max(activity) / 2
    planned: list[PlannedOrder] = []
    weights = [
        taste.customer_weights(random.Random(f"demo-orders:{seed}:taste:{n}"), ("camping", "pans") if n == 0 else ())
        for n in range(len(people))
    ]
    guests = 0
    start = today - timedelta(days=HISTORY_DAYS)
    span = (HISTORY_DAYS - 4) * 24 * 3600  # delivered by now: placed at least four days ago
    for i in range(orders):
        order_rng = random.Random(f"demo-orders:{seed}:order:{i}")
        if order_rng.random() < 0.2:
            guests += 1
            email, name, cum = f"guest.{i}@demo.example", "Guest", weights[order_rng.randrange(len(weights))]
        else:
            n = order_rng.choices(range(len(people)), weights=activity)[0]
            (email, name), cum = people[n], weights[n]
        placed_at = start + timedelta(seconds=order_rng.randrange(span))
        basket = taste.basket(order_rng, cum)
        planned.append(PlannedOrder(f"demo:{seed}:{i}", email, name, placed_at,
                                    tuple((taste.products[index], variant) for index, variant in basket)))  # fmt: skip
    return planned


def demo_orders_seed(
    *, customers: int = 300, orders: int = 2000, seed: int = 1, today: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoOrdersResult:  # fmt: skip
    """Make sure the demo shop has its customers and their past orders (idempotent: a second run adds nothing).
    The demo customer (DEMO_CUSTOMER_EMAIL) gets a fresh password, returned. progress(n) after each n orders."""
    today = today or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    plan = demo_order_plan(demo_catalog_products(seed=1), customers=customers, orders=orders, seed=seed, today=today)
    demo, password = demo_customer_ensure(email=DEMO_CUSTOMER_EMAIL)
    accounts = {o.email: o.full_name for o in plan if not o.email.startswith("guest.") and o.email != demo.email}
    ids = demo_customers_ensure(customers=sorted(accounts.items()))
    ids[demo.email] = demo.id
    history = [
        HistoryOrder(key=o.key, email=o.email, user_id=ids.get(o.email), placed_at=o.placed_at, full_name=o.full_name,
                     lines=tuple(HistoryLine(variant_id=v.id, product_id=p.id, sku=v.sku, name=p.title,
                                             variant_label=v.label, unit_price=v.price) for p, v in o.lines))
        for o in sorted(plan, key=lambda o: o.placed_at)
    ]  # fmt: skip
    result = orders_demo_history(orders=history, progress=progress)
    return DemoOrdersResult(len(ids), result.created, result.existing, sum(len(o.lines) for o in history),
                            demo.email, password)  # fmt: skip
