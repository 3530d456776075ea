"""The product page, variants by id (cart, checkout, orders) and the sitemap's products. Private to catalog."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connections

from catalog.data import ImageInfo, ProductDetail, ProductNotFound, VariantInfo, ordered_options
from catalog.images import media_url
from catalog.models import Product, ProductImage, StockItem, Variant
from kernel.db import db_for_module, prepared_rows

# The columns of a variant that the product page, the cart, the checkout and the orders' pages need.
_VARIANT_COLUMNS = (
    "pk", "product_id", "product__title", "product__slug", "listing_image", "product__listing_image", "sku",
    "options", "price", "compare_at_price", "currency", "stock__on_hand", "stock__reserved", "is_active",
)  # fmt: skip
_PRODUCT_COLUMNS = (
    "pk", "title", "slug", "brand_name", "description", "attributes", "category_id", "min_price", "max_price",
    "currency", "in_stock", "updated_at",
)  # fmt: skip


def _variant_info(row: tuple) -> VariantInfo:
    pk, product_id, title, slug, own_image, image, sku, options, price, compare_at, currency, *rest = row
    on_hand, reserved, active = rest
    available = on_hand - reserved if on_hand is not None else 0
    return VariantInfo(  # the picture of the variant's colour, else the product's
        id=pk, product_id=product_id, product_title=title, product_slug=slug,
        image_url=media_url(own_image or image), sku=sku, options=ordered_options(options), price=price,
        compare_at_price=compare_at, currency=currency, available=max(available, 0), is_active=active,
    )  # fmt: skip


# The hot reads, compiled by the ORM once per shape (kernel.db.prepared_rows): no model instances either.


def _product_by_slug(slug: str) -> Any:
    return Product.objects.filter(slug=slug, is_active=True).order_by().values_list(*_PRODUCT_COLUMNS)


def _product_variants(product_id: int) -> Any:
    return Variant.objects.filter(product_id=product_id, is_active=True).values_list(*_VARIANT_COLUMNS)


def _product_images(product_id: int) -> Any:
    return ProductImage.objects.filter(product_id=product_id).values_list("image", "large", "listing", "alt_text",
                                                                          "colour")  # fmt: skip


def _variants_by_id(variant_ids: list[int]) -> Any:
    return Variant.objects.filter(pk__in=variant_ids, product__is_active=True).order_by().values_list(*_VARIANT_COLUMNS)


# PostgreSQL: the product, its variants and its pictures in one statement (each list as JSON, the prices as text).
_ONE_READ = (
    "SELECT p.id, p.title, p.slug, p.brand_name, p.description, p.attributes, p.category_id, p.min_price, "  # noqa: S608
    f"p.max_price, p.currency, p.in_stock, p.updated_at, p.listing_image, "
    f"(SELECT json_agg(json_build_array(v.id, v.listing_image, v.sku, v.options, v.price::text, "
    f"v.compare_at_price::text, v.currency, s.on_hand, s.reserved, v.is_active) ORDER BY v.position, v.id) "
    f"FROM {Variant._meta.db_table} v LEFT JOIN {StockItem._meta.db_table} s ON s.variant_id = v.id "
    f"WHERE v.product_id = p.id AND v.is_active), "
    f"(SELECT json_agg(json_build_array(i.image, i.large, i.listing, i.alt_text, i.colour) ORDER BY i.position, i.id) "
    f"FROM {ProductImage._meta.db_table} i WHERE i.product_id = p.id) "
    f"FROM {Product._meta.db_table} p WHERE p.slug = %s AND p.is_active"
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _read_in_one(alias: str, slug: str) -> tuple[tuple, list[tuple], list[tuple]] | None:
    """The product's row, its variants' rows (as _VARIANT_COLUMNS) and its pictures' rows, in one statement."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_ONE_READ, [slug])
        found = cursor.fetchone()
    if found is None:
        return None
    *product, listing_image, variant_rows, image_rows = found
    product[5] = _json(product[5])
    variants = [
        (pk, product[0], product[1], product[2], own_image, listing_image, sku, _json(options), Decimal(price),
         None if compare_at is None else Decimal(compare_at), currency, on_hand, reserved, active)
        for pk, own_image, sku, options, price, compare_at, currency, on_hand, reserved, active
        in _json(variant_rows) or ()
    ]  # fmt: skip
    return tuple(product), variants, [tuple(row) for row in _json(image_rows) or ()]


def product_detail(*, slug: str) -> ProductDetail:
    """Everything the product page shows: one statement on PostgreSQL, three elsewhere. Raises ProductNotFound."""
    alias = db_for_module("catalog")
    if connections[alias].vendor == "postgresql":
        read = _read_in_one(alias, slug)
        if read is None:
            raise ProductNotFound(slug)
        row, variants, images = read
    else:
        found = prepared_rows("catalog.product_by_slug", _product_by_slug, slug, using=alias)
        if not found:
            raise ProductNotFound(slug)
        row = found[0]
        variants = prepared_rows("catalog.product_variants", _product_variants, row[0], using=alias)
        images = prepared_rows("catalog.product_images", _product_images, row[0], using=alias)
    pk, title, slug, brand, description, attributes, category_id, price_min, price_max, currency, *rest = row
    in_stock, updated_at = rest
    return ProductDetail(
        id=pk,
        title=title,
        slug=slug,
        brand=brand,
        description=description,
        attributes=tuple((str(k), str(v)) for k, v in (attributes or {}).items()),
        category_id=category_id,
        variants=tuple(_variant_info(v) for v in variants),
        images=tuple(
            ImageInfo(
                url=media_url(image),
                large_url=media_url(large or image),
                listing_url=media_url(listing or image),
                alt=alt,
                colour=colour,
            )
            for image, large, listing, alt, colour in images
        ),
        price_min=price_min,
        price_max=price_max,
        currency=currency,
        in_stock=in_stock,
        updated_at=updated_at,
    )


def variants_get(*, variant_ids: Iterable[int]) -> dict[int, VariantInfo]:
    """Current price, availability and picture (of the variant's colour) of these variants (missing ids are left
    out). One query. The cart, the checkout and every order ask this: only the columns needed, and no model
    instances."""
    wanted = list(dict.fromkeys(variant_ids))
    rows = prepared_rows("catalog.variants_by_id", _variants_by_id, wanted, using=db_for_module("catalog"))
    return {row[0]: _variant_info(row) for row in rows}


def sitemap_products() -> list[tuple[str, datetime]]:
    """(slug, last modified) of every product on sale."""
    return list(Product.objects.filter(is_active=True).order_by("id").values_list("slug", "updated_at"))
