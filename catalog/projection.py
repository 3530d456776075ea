"""The listing read model: the fields of Product that listings show (prices, stock flag, image, brand, option
values, search vector or, on SQLite, the rows of the trigram search table) and each variant's picture (of its
colour), recomputed from variants, stock and images; and image renditions. Private to catalog."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog import search as _search
from catalog.data import colour_of, option_key
from catalog.events import ProductChanged
from catalog.images import make_renditions
from catalog.models import Product, ProductImage, ProductOptionValue, StockItem, Variant
from kernel.bus import publish
from kernel.db import atomic, db_for_module

# The fields of Product that refresh_products recomputes for listings (the read model), in the model's order.
LISTING_FIELDS = (
    "brand_name",
    "min_price",
    "max_price",
    "compare_at_price",
    "currency",
    "in_stock",
    "listing_image",
    "listing_image_alt",
)


def _listing_fields(product: Product) -> tuple:
    return (
        product.brand_name,
        product.min_price,
        product.max_price,
        product.compare_at_price,
        product.in_stock,
        product.listing_image,
        product.listing_image_alt,
    )


@atomic(module="catalog")
def refresh_products(
    *, product_ids: Iterable[int], publish_events: bool = True, listing_changed: bool | None = None
) -> int:
    """Recompute what listings show of these products (prices, stock flag, image, brand, option values, search
    index: the vector on PostgreSQL, the FTS5 rows of active products on SQLite) from their variants, stock and
    images, set their updated_at, and publish catalog.product.changed.v1 for each.

    listing_changed=True says the caller changed what listings show itself (a title edited in the admin); by
    default it is worked out from the recomputed fields. publish_events=False is for bulk imports, which publish
    one CategoriesChanged at the end instead.
    Returns how many products were refreshed.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return 0
    # Locked in id order before anything else: stock services refresh many products at once (stock_set_many)
    # and must not deadlock with each other; of=self leaves the brand rows (and the outer join) alone.
    locked = Product.objects.select_related("brand").filter(pk__in=ids).order_by("pk").select_for_update(of=("self",))
    products = {p.pk: p for p in locked}
    before = {pk: _listing_fields(p) for pk, p in products.items()}
    variants: dict[int, list[Variant]] = defaultdict(list)
    for v in Variant.objects.filter(product_id__in=ids, is_active=True).select_related("stock"):
        variants[v.product_id].append(v)
    images: dict[int, list[ProductImage]] = defaultdict(list)
    for image in ProductImage.objects.filter(product_id__in=ids).order_by("product_id", "position", "id"):
        images[image.product_id].append(image)

    # every variant has a stock row (new variants from the admin start at zero)
    StockItem.objects.bulk_create(
        [StockItem(variant_id=v.pk) for own in variants.values() for v in own if not hasattr(v, "stock")],
        ignore_conflicts=True,
    )
    options: list[ProductOptionValue] = []
    pictured: list[Variant] = []  # variants whose picture changed
    now = timezone.now()  # what a product shows changed, or may have: integrators' updated_since must see it
    for pk, product in products.items():
        product.updated_at = now
        own = variants.get(pk, [])
        available = [v.stock.available if getattr(v, "stock", None) is not None else None for v in own]
        changed, pairs = project(product=product, variants=own, available=available, images=images.get(pk, []))
        pictured.extend(changed)
        options.extend(ProductOptionValue(product_id=pk, key=k, name=n, value=v) for k, n, v in pairs)

    Product.objects.bulk_update(products.values(), (*LISTING_FIELDS, "updated_at"), batch_size=500)
    if pictured:
        Variant.objects.bulk_update(pictured, ["listing_image"], batch_size=500)
    ProductOptionValue.objects.filter(product_id__in=ids).delete()
    ProductOptionValue.objects.bulk_create(options, batch_size=2000)
    _search.update_index(Product, ids)  # the search index follows titles, brands and is_active
    # the "did you mean" words too: now for this process, after commit for readers that cached them meanwhile
    _search.forget_vocabulary()
    transaction.on_commit(_search.forget_vocabulary, using=db_for_module("catalog"))
    if publish_events:
        for pk, product in products.items():
            changed = listing_changed if listing_changed is not None else before[pk] != _listing_fields(product)
            publish(ProductChanged(product_id=pk, slug=product.slug, listing_changed=changed))
    return len(products)


def project(
    *, product: Product, variants: Sequence[Variant], available: Sequence[int | None], images: Sequence[ProductImage]
) -> tuple[list[Variant], list[tuple[str, str, str]]]:
    """The read model of one product, from its active variants (in position order), their available stock (None:
    no stock row) and its images (in position order): sets the product's listing fields (not updated_at) and each
    variant's listing_image, and returns the variants whose picture changed and the product's option values
    (key, name, value). No query: refresh_products and the demo catalog's bulk seed share it, so the two agree.
    """
    first = images[0] if images else None
    by_colour: dict[str, ProductImage] = {}
    for image in images:
        if image.colour:
            by_colour.setdefault(image.colour.lower(), image)
    prices = [v.price for v in variants]
    product.brand_name = product.brand.name if product.brand else ""
    product.min_price = min(prices) if prices else None
    product.max_price = max(prices) if prices else None
    compare = [v.compare_at_price for v in variants if v.compare_at_price]
    product.compare_at_price = max(compare) if compare else None
    product.currency = variants[0].currency if variants else settings.SHOP_CURRENCY
    product.in_stock = any(level is not None and level > 0 for level in available)
    product.listing_image = (first.listing or first.image.name) if first else ""
    product.listing_image_alt = first.alt_text if first else ""
    pictured = []
    for v in variants:  # the cart shows the picture of the line's colour
        picture = by_colour.get(colour_of(v.options).lower(), first)
        name = (picture.listing or picture.image.name) if picture else ""
        if v.listing_image != name:
            v.listing_image = name
            pictured.append(v)
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str, str]] = []
    for v in variants:
        for name, value in (v.options or {}).items():
            pair = (option_key(str(name)), str(value))
            if pair not in seen:
                seen.add(pair)
                pairs.append((pair[0], str(name), pair[1]))
    return pictured, pairs


def images_render(*, product_id: int) -> int:
    """Make the listing and large renditions of a product's images that lack them; returns how many."""
    made = 0
    for image in ProductImage.objects.filter(product_id=product_id, listing=""):
        names = make_renditions(image.image.name)
        ProductImage.objects.filter(pk=image.pk).update(listing=names["listing"], large=names["large"])
        made += 1
    return made
