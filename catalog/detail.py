"""The product page, variants by id (cart, checkout, orders) and the sitemap's products. Private to catalog."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from catalog.data import ImageInfo, ProductDetail, ProductNotFound, VariantInfo, ordered_options
from catalog.images import media_url
from catalog.models import Product, ProductImage, Variant
from kernel.db import unique


def _variant_info(v: Variant) -> VariantInfo:
    stock = getattr(v, "stock", None)
    available = stock.available if stock is not None else 0
    return VariantInfo(
        id=v.pk,
        product_id=v.product_id,
        product_title=v.product.title,
        product_slug=v.product.slug,
        image_url=media_url(v.listing_image or v.product.listing_image),
        sku=v.sku,
        options=ordered_options(v.options),
        price=v.price,
        compare_at_price=v.compare_at_price,
        currency=v.currency,
        available=max(available, 0),
        is_active=v.is_active,
    )


def product_detail(*, slug: str) -> ProductDetail:
    """Everything the product page shows, in three queries. Raises ProductNotFound."""
    product = unique(Product.objects.filter(slug=slug, is_active=True))
    if product is None:
        raise ProductNotFound(slug)
    variants = Variant.objects.filter(product_id=product.pk, is_active=True).select_related("stock", "product")
    images = ProductImage.objects.filter(product_id=product.pk)
    return ProductDetail(
        id=product.pk,
        title=product.title,
        slug=product.slug,
        brand=product.brand_name,
        description=product.description,
        attributes=tuple((str(k), str(v)) for k, v in (product.attributes or {}).items()),
        category_id=product.category_id,
        variants=tuple(_variant_info(v) for v in variants),
        images=tuple(
            ImageInfo(
                url=media_url(i.image.name),
                large_url=media_url(i.large or i.image.name),
                listing_url=media_url(i.listing or i.image.name),
                alt=i.alt_text,
                colour=i.colour,
            )
            for i in images
        ),
        price_min=product.min_price,
        price_max=product.max_price,
        currency=product.currency,
        in_stock=product.in_stock,
        updated_at=product.updated_at,
    )


def variants_get(*, variant_ids: Iterable[int]) -> dict[int, VariantInfo]:
    """Current price, availability and picture (of the variant's colour) of these variants (missing ids are left
    out). One query."""
    rows = (
        Variant.objects.filter(pk__in=list(variant_ids), product__is_active=True)
        .order_by()
        .values_list(
            "pk", "product_id", "product__title", "product__slug", "listing_image", "product__listing_image", "sku",
            "options", "price", "compare_at_price", "currency", "stock__on_hand", "stock__reserved", "is_active",
        )
    )  # fmt: skip
    # The cart, the checkout and every order ask this: only the columns needed, and no model instances.
    found = {}
    for row in rows:
        pk, product_id, title, slug, own_image, image, sku, options, price, compare_at, currency, *rest = row
        on_hand, reserved, active = rest
        available = on_hand - reserved if on_hand is not None else 0
        found[pk] = VariantInfo(  # the picture of the variant's colour, else the product's
            id=pk, product_id=product_id, product_title=title, product_slug=slug,
            image_url=media_url(own_image or image), sku=sku, options=ordered_options(options), price=price,
            compare_at_price=compare_at, currency=currency, available=max(available, 0), is_active=active,
        )  # fmt: skip
    return found


def sitemap_products() -> list[tuple[str, datetime]]:
    """(slug, last modified) of every product on sale."""
    return list(Product.objects.filter(is_active=True).order_by("id").values_list("slug", "updated_at"))
