"""A believable demo catalog: nested categories, brands, products with variants, stock and generated images.

Product number i is built from its own random generator seeded with (seed, i), so the same seed always gives the
same catalog, and seeding 20,000 after 1,000 only adds the 19,000 missing ones. Images come from a pool drawn
with Pillow (one per kind of product and colour) and shared by the products that look alike. The rows are written
in bulk (thousands a statement), with what listings show computed by catalog.projection.project, as refresh_products
computes it: 100,000 products in about 3 minutes on PostgreSQL.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.text import slugify
from PIL import Image, ImageDraw

from catalog import search
from catalog.categories import categories_changed
from catalog.data import COLOUR_RGB, DemoSeedResult
from catalog.images import encode_jpeg, make_renditions
from catalog.models import Brand, Category, Product, ProductImage, ProductOptionValue, StockItem, Variant
from catalog.projection import project, refresh_products
from kernel.db import atomic
from kernel.money import round_money

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 500  # products per transaction through refresh_products (the reference path)
BULK_CHUNK = 5000  # products per transaction on the bulk path
BULK_ROWS = 5000  # rows per INSERT on the bulk path, fewer for wide tables (see _rows_per_insert)
MAX_PARAMETERS = 65535  # what PostgreSQL's protocol (and psycopg) allows in one statement

COLOURS = COLOUR_RGB  # the pool pictures are drawn in the colours of the swatches


@dataclass(frozen=True)
class Kind:
    nouns: tuple[str, ...]
    shape: str
    price: tuple[int, int]
    sizes: tuple[str, ...] = ()
    size_label: str = "Size"
    colours: tuple[str, ...] = ("Black", "Navy", "Grey", "White")
    materials: tuple[str, ...] = ("Cotton",)
    weight: tuple[int, int] = (150, 600)


APPAREL = ("Black", "White", "Navy", "Grey", "Red", "Forest", "Sand", "Olive", "Rose", "Mustard", "Teal")
KINDS = {
    "tops": Kind(("T-shirt", "Polo shirt", "Henley", "Long-sleeve tee", "Tank top"), "shirt", (12, 55),
                 ("XS", "S", "M", "L", "XL", "XXL"), colours=APPAREL,
                 materials=("Organic cotton", "Cotton", "Linen blend", "Merino wool"), weight=(120, 300)),
    "outer": Kind(("Jacket", "Parka", "Windbreaker", "Rain jacket", "Fleece", "Puffer jacket"), "jacket", (55, 280),
                  ("XS", "S", "M", "L", "XL", "XXL"), colours=("Black", "Navy", "Olive", "Forest", "Sand", "Red"),
                  materials=("Recycled polyester", "Waxed cotton", "Nylon", "Wool blend"), weight=(400, 1400)),
    "trousers": Kind(("Chinos", "Jeans", "Joggers", "Cargo trousers", "Shorts"), "trousers", (25, 120),
                     ("28", "30", "32", "34", "36", "38"), "Waist", ("Navy", "Black", "Sand", "Olive", "Grey"),
                     ("Denim", "Cotton twill", "Stretch cotton"), (300, 800)),
    "dresses": Kind(("Wrap dress", "Midi dress", "Shirt dress", "Sundress", "Knit dress"), "dress", (35, 160),
                    ("XS", "S", "M", "L", "XL"), colours=("Black", "Navy", "Rose", "Forest", "Mustard", "Red"),
                    materials=("Viscose", "Linen", "Cotton poplin", "Jersey"), weight=(200, 500)),
    "shoes": Kind(("Running shoe", "Trail shoe", "Sneaker", "Leather boot", "Walking shoe"), "shoe", (45, 210),
                  ("38", "39", "40", "41", "42", "43", "44", "45", "46"), "EU size",
                  ("Black", "White", "Grey", "Navy", "Orange", "Teal"), ("Mesh", "Leather", "Suede", "Canvas"),
                  (500, 1200)),
    "headphones": Kind(("Wireless headphones", "Noise-cancelling headphones", "Studio headphones"), "headphones",
                       (40, 420), colours=("Black", "White", "Silver", "Navy"),
                       materials=("Aluminium", "Plastic", "Leatherette"), weight=(180, 350)),
    "speakers": Kind(("Bluetooth speaker", "Smart speaker", "Bookshelf speaker", "Soundbar"), "speaker", (30, 500),
                     colours=("Black", "Grey", "Teal", "Red", "Silver"), materials=("Fabric", "Aluminium", "Wood"),
                     weight=(300, 4000)),
    "earbuds": Kind(("Wireless earbuds", "Sport earbuds", "In-ear monitors"), "earbuds", (25, 280),
                    colours=("Black", "White", "Silver", "Sky"), materials=("Plastic",), weight=(40, 90)),
    "chargers": Kind(("USB-C charger", "Power bank", "Wireless charging pad", "Charging cable"), "powerbank",
                     (9, 90), colours=("Black", "White", "Grey"), materials=("Plastic", "Aluminium"),
                     weight=(30, 400)),
    "pans": Kind(("Frying pan", "Saucepan", "Sauté pan", "Wok", "Casserole"), "pan", (18, 180),
                 ("20 cm", "24 cm", "28 cm"), "Diameter", ("Black", "Silver", "Red", "Teal"),
                 ("Cast iron", "Stainless steel", "Carbon steel", "Ceramic non-stick"), (700, 3500)),
    "knives": Kind(("Chef's knife", "Santoku knife", "Bread knife", "Paring knife"), "knife", (15, 190),
                   colours=("Black", "Silver"), materials=("Damascus steel", "Stainless steel", "Ceramic"),
                   weight=(80, 300)),
    "cushions": Kind(("Cushion cover", "Throw blanket", "Floor cushion"), "cushion", (12, 90),
                     ("45 x 45 cm", "50 x 50 cm", "60 x 60 cm"), "Size",
                     ("Sand", "Mustard", "Teal", "Rose", "Grey", "Forest"), ("Linen", "Velvet", "Wool", "Cotton"),
                     (200, 1200)),
    "lamps": Kind(("Table lamp", "Floor lamp", "Desk lamp", "Pendant light"), "lamp", (25, 320),
                  colours=("Black", "White", "Mustard", "Teal", "Sand"), materials=("Brass", "Ceramic", "Rattan"),
                  weight=(700, 5000)),
    "fitness": Kind(("Yoga mat", "Dumbbell set", "Kettlebell", "Resistance bands", "Foam roller"), "dumbbell",
                    (10, 160), colours=("Black", "Teal", "Rose", "Grey", "Orange"),
                    materials=("Natural rubber", "Cast iron", "TPE"), weight=(300, 12000)),
    "camping": Kind(("Two-person tent", "Sleeping bag", "Camping stove", "Trekking poles", "Headlamp"), "tent",
                    (20, 450), colours=("Orange", "Forest", "Olive", "Sky"),
                    materials=("Ripstop nylon", "Aluminium", "Down"), weight=(150, 3500)),
    "garden": Kind(("Watering can", "Planter", "Pruning shears", "Garden hose", "Raised bed"), "planter", (8, 140),
                   colours=("Forest", "Grey", "Sand", "Teal", "Black"), materials=("Galvanised steel", "Terracotta",
                                                                                    "Recycled plastic", "Cedar"),
                   weight=(300, 9000)),
}  # fmt: skip

# (name, children) or (name, kind) for leaves
TREE: list[tuple[str, object]] = [
    ("Clothing", [
        ("Men", [("Men's T-shirts", "tops"), ("Men's jackets", "outer"), ("Men's trousers", "trousers")]),
        ("Women", [("Women's tops", "tops"), ("Dresses", "dresses"), ("Women's jackets", "outer"),
                   ("Women's jeans", "trousers")]),
        ("Kids", [("Kids' T-shirts", "tops"), ("Kids' jackets", "outer")]),
    ]),
    ("Shoes", [("Running", "shoes"), ("Sneakers", "shoes"), ("Boots", "shoes")]),
    ("Electronics", [
        ("Audio", [("Headphones", "headphones"), ("Speakers", "speakers"), ("Earbuds", "earbuds")]),
        ("Chargers & power", "chargers"),
    ]),
    ("Home & kitchen", [
        ("Cookware", [("Pans & pots", "pans"), ("Knives", "knives")]),
        ("Decor", [("Cushions & throws", "cushions"), ("Lighting", "lamps")]),
    ]),
    ("Sports & outdoors", [("Fitness", "fitness"), ("Camping", "camping")]),
    ("Garden", [("Garden tools & planters", "garden")]),
]  # fmt: skip

BRANDS = [
    "Northwind", "Alder & Co", "Bluefjord", "Copperleaf", "Driftwood", "Emberline", "Fernhill", "Granite Peak",
    "Harbor Lane", "Ironbark", "Juniper", "Kestrel", "Lumen", "Meridian", "Nordvik", "Oakridge", "Pinecrest",
    "Quillon", "Riverstone", "Saltmarsh", "Tidewater", "Umbra", "Vantage", "Willow & Wren", "Yarrow", "Zephyr",
    "Soundwave", "Voltix", "Forge & Flame", "Terrafirm",
]  # fmt: skip
ADJECTIVES = ["Classic", "Essential", "Everyday", "Premium", "Lightweight", "Heritage", "Urban", "Trail", "Pro",
              "Studio", "Compact", "Signature", "Modern", "Relaxed", "Performance", "Eco"]  # fmt: skip
QUALITIES = ["easy to care for", "light to carry", "comfortable from the first use", "covered by a two-year guarantee"]
ORIGINS = ["Portugal", "Italy", "Vietnam", "Turkey", "Germany", "Japan", "Sweden", "India", "Taiwan", "Poland"]
CARE = {
    "default": "Wipe clean with a damp cloth.",
    "textile": "Machine wash at 30 °C. Do not tumble dry.",
    "cookware": "Hand wash and dry at once. Oil lightly after use.",
}


@dataclass(frozen=True)
class Leaf:
    category_id: int
    kind_name: str


@dataclass(frozen=True)
class SeedResult:
    created: int
    existing: int
    categories: int
    brands: int


# ---------------------------------------------------------------- structure


def _ensure_categories() -> list[Leaf]:
    leaves: list[Leaf] = []

    def walk(nodes: list[tuple[str, object]], parent: Category | None, prefix: str) -> None:
        for position, (name, content) in enumerate(nodes):
            slug = slugify(name) if parent is None else slugify(f"{prefix} {name}")[:140]
            category, _ = Category.objects.get_or_create(
                slug=slug,
                defaults={"name": name, "parent": parent, "position": position,
                          "description": f"Our selection of {name.lower()}."},
            )  # fmt: skip
            if isinstance(content, list):
                walk(content, category, slug)
            else:
                leaves.append(Leaf(category.pk, str(content)))

    walk(TREE, None, "")
    return leaves


def _ensure_brands() -> list[Brand]:
    existing = {b.slug: b for b in Brand.objects.all()}
    missing = [Brand(name=n, slug=slugify(n)) for n in BRANDS if slugify(n) not in existing]
    Brand.objects.bulk_create(missing)
    by_slug = {b.slug: b for b in Brand.objects.filter(slug__in=[slugify(n) for n in BRANDS])}
    return [by_slug[slugify(n)] for n in BRANDS]


# ---------------------------------------------------------------- images


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, fill: tuple[int, int, int], line: tuple[int, int, int]) -> None:
    w = 6
    if shape in ("shirt", "jacket"):
        body = [(250, 200), (330, 160), (470, 160), (550, 200), (640, 300), (580, 360), (540, 330), (540, 640),
                (260, 640), (260, 330), (220, 360), (160, 300)]  # fmt: skip
        if shape == "jacket":
            body = [(250, 200), (330, 160), (470, 160), (550, 200), (650, 560), (590, 580), (540, 380), (540, 650),
                    (260, 650), (260, 380), (210, 580), (150, 560)]  # fmt: skip
        draw.polygon(body, fill=fill, outline=line, width=w)
        draw.arc((345, 120, 455, 220), 20, 160, fill=line, width=w)
        if shape == "jacket":
            draw.line((400, 200, 400, 650), fill=line, width=w)
    elif shape == "trousers":
        draw.polygon([(270, 150), (530, 150), (560, 650), (430, 650), (400, 330), (370, 650), (240, 650)],
                     fill=fill, outline=line, width=w)  # fmt: skip
    elif shape == "dress":
        draw.polygon([(330, 150), (470, 150), (480, 330), (600, 650), (200, 650), (320, 330)],
                     fill=fill, outline=line, width=w)  # fmt: skip
    elif shape == "shoe":
        draw.polygon([(150, 520), (180, 380), (300, 360), (420, 430), (600, 470), (650, 540), (640, 580),
                      (160, 580)], fill=fill, outline=line, width=w)  # fmt: skip
        draw.line((160, 560, 640, 560), fill=line, width=w)
    elif shape == "headphones":
        draw.arc((220, 160, 580, 520), 180, 360, fill=line, width=28)
        draw.rounded_rectangle((190, 360, 290, 560), 30, fill=fill, outline=line, width=w)
        draw.rounded_rectangle((510, 360, 610, 560), 30, fill=fill, outline=line, width=w)
    elif shape == "speaker":
        draw.rounded_rectangle((260, 150, 540, 650), 40, fill=fill, outline=line, width=w)
        draw.ellipse((320, 380, 480, 540), outline=line, width=w)
        draw.ellipse((365, 220, 435, 290), outline=line, width=w)
    elif shape == "earbuds":
        for x in (260, 440):
            draw.ellipse((x, 300, x + 110, 410), fill=fill, outline=line, width=w)
            draw.rounded_rectangle((x + 35, 390, x + 75, 560), 18, fill=fill, outline=line, width=w)
    elif shape == "powerbank":
        draw.rounded_rectangle((280, 180, 520, 620), 36, fill=fill, outline=line, width=w)
        for i in range(4):
            draw.rectangle((350 + i * 28, 260, 368 + i * 28, 280), fill=line)
    elif shape == "pan":
        draw.ellipse((150, 250, 500, 600), fill=fill, outline=line, width=w)
        draw.ellipse((200, 300, 450, 550), outline=line, width=w)
        draw.rounded_rectangle((490, 395, 690, 455), 20, fill=line)
    elif shape == "knife":
        draw.polygon([(140, 430), (520, 380), (560, 430), (520, 470)], fill=fill, outline=line, width=w)
        draw.rounded_rectangle((540, 405, 690, 455), 16, fill=line)
    elif shape == "cushion":
        draw.rounded_rectangle((200, 220, 600, 580), 60, fill=fill, outline=line, width=w)
        draw.line((260, 280, 540, 520), fill=line, width=3)
    elif shape == "lamp":
        draw.polygon([(300, 180), (500, 180), (560, 380), (240, 380)], fill=fill, outline=line, width=w)
        draw.rectangle((390, 380, 410, 600), fill=line)
        draw.ellipse((300, 590, 500, 650), fill=line)
    elif shape == "dumbbell":
        draw.rectangle((250, 385, 550, 415), fill=line)
        for x in (190, 530):
            draw.rounded_rectangle((x, 290, x + 80, 510), 16, fill=fill, outline=line, width=w)
    elif shape == "tent":
        draw.polygon([(400, 180), (660, 620), (140, 620)], fill=fill, outline=line, width=w)
        draw.polygon([(400, 380), (470, 620), (330, 620)], fill=line)
    else:  # planter
        draw.polygon([(260, 380), (540, 380), (500, 640), (300, 640)], fill=fill, outline=line, width=w)
        draw.ellipse((330, 230, 400, 380), fill=(60, 140, 70))
        draw.ellipse((400, 200, 470, 380), fill=(70, 160, 80))


def _pool_image(kind_name: str, colour: str, cache: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, str]:
    """(original, listing rendition) storage names of the pool picture for this kind and colour."""
    key = (kind_name, colour)
    if key in cache:
        return cache[key]
    name = f"products/demo/{kind_name}-{slugify(colour)}.jpg"
    listing = name.removesuffix(".jpg") + ".listing.jpg"
    if not (default_storage.exists(name) and default_storage.exists(listing)):
        rgb = COLOURS[colour]
        background = tuple(int(c * 0.12 + 255 * 0.88) for c in rgb)
        line = tuple(max(0, int(c * 0.55)) for c in rgb) if sum(rgb) > 200 else (90, 90, 96)
        image = Image.new("RGB", (800, 800), background)
        draw = ImageDraw.Draw(image)
        draw.ellipse((120, 690, 680, 740), fill=tuple(int(c * 0.9) for c in background))
        _draw_shape(draw, KINDS[kind_name].shape, rgb, line)
        if default_storage.exists(name):
            default_storage.delete(name)
        name = default_storage.save(name, ContentFile(encode_jpeg(image)))
        listing = make_renditions(name)["listing"]
    cache[key] = (name, listing)
    return cache[key]


# ---------------------------------------------------------------- products


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    value = rng.uniform(low, high)
    whole = int(value)
    cents = rng.choice(["99", "95", "00", "50"])
    return Decimal(f"{max(whole, 1)}.{cents}")


def _build(
    i: int, seed: int, leaves: list[Leaf], brands: list[Brand]
) -> tuple[Product, list[Variant], list[str], list[int]]:
    rng = random.Random(f"{seed}:{i}")
    leaf = leaves[rng.randrange(len(leaves))]
    kind = KINDS[leaf.kind_name]
    kind_brands = random.Random(f"{seed}:{leaf.kind_name}").sample(brands, 8)
    brand = rng.choice(kind_brands)
    noun = rng.choice(kind.nouns)
    adjective = rng.choice(ADJECTIVES)
    material = rng.choice(kind.materials)
    title = f"{brand.name} {noun}" if adjective.lower() in noun.lower() else f"{brand.name} {adjective} {noun}"
    code = f"{i:x}"
    colours = rng.sample(kind.colours, k=min(len(kind.colours), rng.randint(1, 3)))
    sizes = list(kind.sizes)
    if sizes and len(sizes) > 4:
        start = rng.randint(0, 1)
        sizes = sizes[start : start + rng.randint(4, len(sizes) - start)]
    base = _price(rng, *kind.price)
    on_sale = rng.random() < 0.2
    published = EPOCH + timedelta(days=rng.randint(0, 320), minutes=rng.randint(0, 1440))
    care = CARE["textile" if material in ("Cotton", "Organic cotton", "Linen", "Merino wool", "Jersey") else
                "cookware" if leaf.kind_name == "pans" else "default"]  # fmt: skip
    product = Product(
        title=title,
        slug=f"{slugify(title)}-{code}",
        brand=brand,
        category_id=leaf.category_id,
        description=(
            f"The {adjective.lower()} {noun.lower()} from {brand.name}, made of {material.lower()}. "
            f"{rng.choice(['Built to last', 'Designed for every day', 'Made in small batches', 'Tested by our team'])}"
            f" and {rng.choice(QUALITIES)}."
        ),
        attributes={"Material": material, "Care": care, "Made in": rng.choice(ORIGINS)},
        is_featured=rng.random() < 0.04,
        popularity=int(rng.paretovariate(1.2) * 10) % 10000,
        created_at=published,
        published_at=published,
        currency=settings.SHOP_CURRENCY,
    )
    variants = []
    combos = list(itertools.product(colours, sizes or [None]))
    for position, (colour, size) in enumerate(combos):
        options = {"Colour": colour}
        if size is not None:
            options[kind.size_label] = size
        premium = Decimal("5.00") if size in ("XXL", "3XL", "28 cm", "60 x 60 cm") else Decimal(0)
        price = round_money(base + premium, settings.SHOP_CURRENCY)
        variants.append(
            Variant(
                sku=f"D{seed}-{i:06d}-{position:02d}",
                options=options,
                price=price,
                compare_at_price=round_money(price * Decimal("1.25"), settings.SHOP_CURRENCY) if on_sale else None,
                currency=settings.SHOP_CURRENCY,
                weight_grams=rng.randint(*kind.weight),
                position=position,
            )
        )
    stock = [0 if rng.random() < 0.12 else rng.randint(1, 60) for _ in variants]
    return product, variants, colours, stock


def seed_products(
    *, products: int, seed: int = 1, progress: Callable[[int], None] | None = None, bulk: bool = True
) -> SeedResult:
    """Make sure demo products 0 .. products-1 of this seed exist. Idempotent.

    bulk (the default) writes each chunk of BULK_CHUNK products in INSERTs of up to BULK_ROWS rows a table, the
    listing fields computed in memory by catalog.projection.project before the rows are written, and the search
    index by one UPDATE per chunk. bulk=False writes batches of BATCH products and lets refresh_products read them
    back and compute the same fields (about 130 products/s); it is the reference the bulk path is tested against.
    """
    leaves = _ensure_categories()
    brands = _ensure_brands()
    prefix = f"D{seed}-"
    existing_numbers = {
        int(sku.split("-")[1])
        for sku in Variant.objects.filter(sku__startswith=prefix, position=0).values_list("sku", flat=True)
    }
    todo = [i for i in range(products) if i not in existing_numbers]
    images: dict[tuple[str, str], tuple[str, str]] = {}
    create = _create_chunk_bulk if bulk else _create_batch
    for batch in _chunks(todo, BULK_CHUNK if bulk else BATCH):
        create(batch, seed, leaves, brands, images)
        if progress:
            progress(len(batch))
    if bulk and todo:
        search.forget_vocabulary()
    return SeedResult(
        created=len(todo),
        existing=products - len(todo),
        categories=Category.objects.count(),
        brands=len(brands),
    )


def demo_catalog_seed(
    *, products: int, seed: int = 1, progress: Callable[[int], None] | None = None, bulk: bool = True
) -> DemoSeedResult:
    """Make sure the demo catalog has products 0 .. products-1 of this seed (idempotent, deterministic).

    progress(n) is called after each batch of n products. Publishes one catalog.categories.changed.v1 at the end.
    bulk=False takes the slow path through refresh_products, which gives the same catalog (see seed_products).
    """
    result = seed_products(products=products, seed=seed, progress=progress, bulk=bulk)
    if result.created:
        root = Category.objects.filter(parent=None).order_by("pk").values_list("pk", flat=True).first()
        categories_changed(category_id=root or 0)
    return DemoSeedResult(result.created, result.existing, result.categories, result.brands)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@atomic(module="catalog")
def _create_batch(
    numbers: list[int],
    seed: int,
    leaves: list[Leaf],
    brands: list[Brand],
    images: dict[tuple[str, str], tuple[str, str]],
) -> None:
    built = [_build(i, seed, leaves, brands) for i in numbers]
    Product.objects.bulk_create([p for p, _, _, _ in built])
    variants, stock, pictures = [], [], []
    kind_of = {leaf.category_id: leaf.kind_name for leaf in leaves}
    for product, product_variants, colours, levels in built:
        for v, level in zip(product_variants, levels, strict=True):
            v.product = product
            variants.append(v)
            stock.append(level)
        pictures.extend(_pictures(product, kind_of[product.category_id], colours, images))
    Variant.objects.bulk_create(variants)
    StockItem.objects.bulk_create([StockItem(variant=v, on_hand=n) for v, n in zip(variants, stock, strict=True)])
    ProductImage.objects.bulk_create(pictures)
    refresh_products(product_ids=[p.pk for p, _, _, _ in built], publish_events=False)


def _pictures(product: Product, kind_name: str, colours: list[str], images: dict) -> list[ProductImage]:
    pictures = []
    for position, colour in enumerate(colours):
        original, listing = _pool_image(kind_name, colour, images)
        pictures.append(
            ProductImage(product=product, image=original, listing=listing, large=original, colour=colour,
                         alt_text=f"{product.title} in {colour.lower()}", position=position)
        )  # fmt: skip
    return pictures


def _rows_per_insert(model) -> int:
    """BULK_ROWS, or fewer when a statement of that many rows would pass the protocol's parameter limit."""
    return max(1, min(BULK_ROWS, MAX_PARAMETERS // len(model._meta.concrete_fields)))


@atomic(module="catalog")
def _create_chunk_bulk(
    numbers: list[int],
    seed: int,
    leaves: list[Leaf],
    brands: list[Brand],
    images: dict[tuple[str, str], tuple[str, str]],
) -> None:
    """The rows of these products as _create_batch and refresh_products leave them, written in bulk: the listing
    fields and the variants' pictures come from catalog.projection.project before anything is written, the option
    values after the products have ids, the search vectors from catalog.search in one UPDATE."""
    kind_of = {leaf.category_id: leaf.kind_name for leaf in leaves}
    built = []
    for i in numbers:
        product, variants, colours, levels = _build(i, seed, leaves, brands)
        pictures = _pictures(product, kind_of[product.category_id], colours, images)
        _, pairs = project(product=product, variants=variants, available=levels, images=pictures)
        built.append((product, variants, levels, pictures, pairs))
    Product.objects.bulk_create([b[0] for b in built], batch_size=_rows_per_insert(Product))
    variants, stock, pictures, options = [], [], [], []
    for product, own, levels, own_pictures, pairs in built:
        for v in own:  # ids, not instances: a related object's assignment asks the router each time
            v.product_id = product.pk
        variants.extend(own)
        stock.extend(levels)
        pictures.extend(own_pictures)  # they hold the product, saved now: bulk_create takes its id
        options.extend(ProductOptionValue(product_id=product.pk, key=k, name=n, value=v) for k, n, v in pairs)
    Variant.objects.bulk_create(variants, batch_size=_rows_per_insert(Variant))
    StockItem.objects.bulk_create(
        [StockItem(variant_id=v.pk, on_hand=n) for v, n in zip(variants, stock, strict=True)],
        batch_size=_rows_per_insert(StockItem),
    )
    ProductImage.objects.bulk_create(pictures, batch_size=_rows_per_insert(ProductImage))
    ProductOptionValue.objects.bulk_create(options, batch_size=_rows_per_insert(ProductOptionValue))
    search.update_index(Product, [b[0].pk for b in built])


# ---------------------------------------------------------------- reading the demo catalog back


@dataclass(frozen=True)
class DemoVariant:
    id: int
    sku: str
    label: str  # "Orange / M"
    price: Decimal
    currency: str


@dataclass(frozen=True)
class DemoProduct:
    """A demo product as the demo order generator needs it: what kind of thing it is, by whom, at what price."""

    id: int
    title: str
    kind: str  # the demo kind of its category: "camping", "pans", ...
    noun: str  # what it is: "Sleeping bag", "Frying pan", ...
    brand: str
    category_id: int
    variants: tuple[DemoVariant, ...]


def _noun_of(title: str, kind_name: str) -> str:
    for noun in sorted(KINDS[kind_name].nouns, key=len, reverse=True):
        if title.endswith(noun):
            return noun
    return ""


def demo_catalog_products(*, seed: int = 1) -> tuple[DemoProduct, ...]:
    """The active products of the demo catalog of this seed, with their active variants, in product id order.
    Products added by staff (not from the demo's kinds) are left out. Three queries."""
    kind_of: dict[int, str] = {}

    def walk(nodes: list[tuple[str, object]], prefix: str, top: bool) -> None:
        for name, content in nodes:
            slug = slugify(name) if top else slugify(f"{prefix} {name}")[:140]
            if isinstance(content, list):
                walk(content, slug, False)
            else:
                kind_of[slug] = str(content)  # type: ignore[index]

    walk(TREE, "", True)
    leaf_kind = {pk: kind_of[slug] for pk, slug in Category.objects.filter(slug__in=kind_of).values_list("pk", "slug")}
    variants: dict[int, list[DemoVariant]] = {}
    rows = (
        Variant.objects.filter(sku__startswith=f"D{seed}-", is_active=True, product__is_active=True)
        .order_by("product_id", "position")
        .values_list("pk", "product_id", "sku", "options", "price", "currency")
    )
    for pk, product_id, sku, options, price, currency in rows:
        label = " / ".join(str(v) for v in (options or {}).values())
        variants.setdefault(product_id, []).append(DemoVariant(pk, sku, label, price, currency))
    found = []
    products = (
        Product.objects.filter(pk__in=list(variants), category_id__in=list(leaf_kind))
        .order_by("pk")
        .values_list("pk", "title", "category_id", "brand__name")
    )
    for pk, title, category_id, brand in products:
        kind_name = leaf_kind[category_id]
        noun = _noun_of(title, kind_name)
        if noun:
            found.append(DemoProduct(pk, title, kind_name, noun, brand or "", category_id, tuple(variants[pk])))
    return tuple(found)
