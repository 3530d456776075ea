"""Creating and changing products and their variants (the REST API uses these; so could an import). Private to
catalog.

Each service runs in one catalog transaction, all or nothing, and ends as a save in the admin does: the listing
fields are recomputed (refresh_products, which also publishes catalog.product.changed.v1 and bumps updated_at).
Locks are taken product first, then its variants, so these services cannot deadlock with each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from catalog.data import (
    UNSET,
    CatalogInvalid,
    ProductNotFound,
    ProductRecord,
    UnknownSku,
    Unset,
    VariantChanges,
    VariantRecord,
    VariantSpec,
    ordered_options,
)
from catalog.events import ProductChanged
from catalog.models import Brand, Category, Product, StockItem, Variant
from catalog.projection import refresh_products
from catalog.validation import (
    Errors,
    check_attributes,
    check_count,
    check_options,
    check_price,
    check_slug,
    check_text,
)
from kernel.bus import publish
from kernel.db import atomic, unique

VARIANTS_MAX = 100  # variants product_create and product_update take in one call
SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # it appears in URLs (/api/v1/stock/<sku>/)
# Product fields that what listings show (cards, facets, search, order) depends on; attributes are the page's only.
_LISTING_FIELDS = {"title", "slug", "category_id", "brand", "description", "is_active", "is_featured", "popularity",
                   "published_at"}  # fmt: skip


# ---------------------------------------------------------------- what the services hand back


def _variant_record(variant: Variant) -> VariantRecord:
    stock = getattr(variant, "stock", None)
    return VariantRecord(
        id=variant.pk,
        product_id=variant.product_id,
        sku=variant.sku,
        options=ordered_options(variant.options),
        price=variant.price,
        compare_at_price=variant.compare_at_price,
        currency=variant.currency,
        weight_grams=variant.weight_grams,
        position=variant.position,
        is_active=variant.is_active,
        on_hand=stock.on_hand if stock else 0,
        reserved=stock.reserved if stock else 0,
        updated_at=variant.updated_at,
    )


def _product_record(product_id: int) -> ProductRecord:
    product = Product.objects.select_related("brand").get(pk=product_id)
    variants = Variant.objects.filter(product_id=product_id).select_related("stock").order_by("position", "id")
    return ProductRecord(
        id=product.pk,
        title=product.title,
        slug=product.slug,
        category_id=product.category_id,
        brand_slug=product.brand.slug if product.brand else None,
        is_active=product.is_active,
        updated_at=product.updated_at,
        variants=tuple(_variant_record(v) for v in variants),
    )


# ---------------------------------------------------------------- checks


def _check_product(errors: Errors, product_id: int | None, values: dict[str, Any]) -> Brand | Unset | None:
    """The product fields given (UNSET: not given); returns the brand named by brand_slug (UNSET if not given)."""
    check_text(errors, Product, {k: values.get(k, UNSET) for k in ("title", "slug", "description")})
    slug = values.get("slug", UNSET)
    if slug is not UNSET and "slug" not in errors.found:
        check_slug(errors, slug)
        if "slug" not in errors.found and Product.objects.filter(slug=slug).exclude(pk=product_id).exists():
            errors.add("slug", f"A product with the slug {slug!r} exists already.")
    check_count(errors, "popularity", values.get("popularity", UNSET))
    check_attributes(errors, values.get("attributes", UNSET))
    published_at = values.get("published_at", UNSET)
    if published_at is not UNSET and (not isinstance(published_at, datetime) or timezone.is_naive(published_at)):
        errors.add("published_at", "A date and time with its time zone.")
    category_id = values.get("category_id", UNSET)
    if category_id is not UNSET and not Category.objects.filter(pk=category_id).exists():
        errors.add("category_id", f"No category has the id {category_id}.")
    brand_slug = values.get("brand_slug", UNSET)
    if brand_slug is UNSET or brand_slug is None:
        return brand_slug
    brand = unique(Brand.objects.filter(slug=brand_slug))
    if brand is None:
        errors.add("brand_slug", f"No brand has the slug {brand_slug!r}.")
    return brand


def _check_price_pair(errors: Errors, price: Any, compare_at_price: Any, **where: Any) -> None:
    """A price (required) and a compare-at price (None: none) that is not below it."""
    own = Errors()
    if price is None:
        own.add("price", "A price is required.")
    check_price(own, "price", price)
    check_price(own, "compare_at_price", compare_at_price)
    if not own and compare_at_price is not None and compare_at_price < price:
        own.add("compare_at_price", f"Must be at least the price ({price}), or null for none.")
    for name, messages in own.found.items():
        for message in messages:
            errors.add(name, message, **where)


def _check_specs(errors: Errors, specs: Sequence[VariantSpec], *, within: str | None) -> None:
    """New variants: each one's fields, SKUs not given twice and not taken."""
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        where: dict[str, Any] = {"within": within, "index": index} if within else {}
        check_text(errors, Variant, {"sku": spec.sku}, **where)
        if isinstance(spec.sku, str) and spec.sku and not SKU_PATTERN.fullmatch(spec.sku):
            errors.add("sku", "Letters, digits, dots, underscores and hyphens only, starting with a letter or digit.",
                       **where)  # fmt: skip
        elif spec.sku in seen:
            errors.add("sku", f"The SKU {spec.sku!r} is given twice (also item {seen[spec.sku]}).", **where)
        else:
            seen[spec.sku] = index
        _check_price_pair(errors, spec.price, spec.compare_at_price, **where)
        check_options(errors, spec.options, **where)
        if spec.currency not in (None, settings.SHOP_CURRENCY):
            errors.add("currency", f"The shop sells in {settings.SHOP_CURRENCY} only.", **where)
        check_count(errors, "weight_grams", spec.weight_grams, **where)
        check_count(errors, "on_hand", spec.on_hand, **where)
        if spec.position is not None:
            check_count(errors, "position", spec.position, **where)
    for sku in Variant.objects.filter(sku__in=list(seen)).values_list("sku", flat=True):
        where = {"within": within, "index": seen[sku]} if within else {}
        errors.add("sku", f"A variant with the SKU {sku!r} exists already.", **where)


def _create_variants(product_id: int, specs: Sequence[VariantSpec], first_position: int) -> None:
    for offset, spec in enumerate(specs):
        variant = Variant.objects.create(
            product_id=product_id,
            sku=spec.sku,
            price=spec.price,
            compare_at_price=spec.compare_at_price,
            options=dict(spec.options),
            currency=settings.SHOP_CURRENCY,
            weight_grams=spec.weight_grams,
            position=first_position + offset if spec.position is None else spec.position,
            is_active=bool(spec.is_active),
        )
        StockItem.objects.create(variant_id=variant.pk, on_hand=spec.on_hand)


def _apply_changes(variant: Variant, changes: VariantChanges, errors: Errors, **where: Any) -> bool:
    """Check and set the changes on the (locked) variant; True if what listings show may change with them
    (options feed the filters; an inactive variant is not sold)."""
    price = variant.price if changes.price is UNSET else changes.price
    compare_at = variant.compare_at_price if changes.compare_at_price is UNSET else changes.compare_at_price
    _check_price_pair(errors, price, compare_at, **where)
    if changes.options is not UNSET:
        check_options(errors, changes.options, **where)
    check_count(errors, "weight_grams", changes.weight_grams, **where)
    check_count(errors, "position", changes.position, **where)
    variant.price, variant.compare_at_price = price, compare_at
    listing = False
    if changes.options is not UNSET:
        listing |= dict(changes.options) != variant.options
        variant.options = dict(changes.options)
    if changes.is_active is not UNSET:
        listing |= bool(changes.is_active) != variant.is_active
        variant.is_active = bool(changes.is_active)
    for field in ("weight_grams", "position"):
        if getattr(changes, field) is not UNSET:
            setattr(variant, field, getattr(changes, field))
    return listing


def _taken(slug: Any, skus: Sequence[str], product_id: int | None = None) -> CatalogInvalid | None:
    """After an IntegrityError (the same slug or SKU saved at the same moment): which one, as CatalogInvalid."""
    if isinstance(slug, str) and Product.objects.filter(slug=slug).exclude(pk=product_id).exists():
        return CatalogInvalid({"slug": [f"A product with the slug {slug!r} exists already."]})
    taken = set(Variant.objects.filter(sku__in=list(skus)).exclude(product_id=product_id).values_list("sku", flat=True))
    if taken:
        return CatalogInvalid({"variants": [f"These SKUs exist already: {', '.join(sorted(taken))}."]})
    return None


# ---------------------------------------------------------------- services


def product_create(
    *,
    title: str,
    category_id: int,
    slug: str | None = None,
    brand_slug: str | None = None,
    description: str = "",
    attributes: dict[str, str] | None = None,
    is_active: bool = True,
    is_featured: bool = False,
    popularity: int = 0,
    published_at: datetime | None = None,
    variants: Sequence[VariantSpec] = (),
) -> ProductRecord:
    """A new product with its variants and their stock, all or nothing (slug None: made from the title).
    Raises CatalogInvalid naming every argument at fault (variants' by index)."""
    slug = slugify(title) if slug is None and isinstance(title, str) else slug
    specs = list(variants)
    values = {"title": title, "slug": slug, "description": description, "popularity": popularity,
              "attributes": attributes or {}, "published_at": published_at or timezone.now(),
              "category_id": category_id, "brand_slug": brand_slug}  # fmt: skip
    try:
        with atomic(module="catalog"):
            errors = Errors()
            brand = _check_product(errors, None, values)
            if len(specs) > VARIANTS_MAX:
                errors.add("variants", f"At most {VARIANTS_MAX} variants at once.")
            else:
                _check_specs(errors, specs, within="variants")
            if errors:
                raise CatalogInvalid(errors.found)
            del values["brand_slug"]
            product = Product.objects.create(
                brand=brand, is_active=bool(is_active), is_featured=bool(is_featured), **values
            )
            _create_variants(product.pk, specs, 0)
            refresh_products(product_ids=[product.pk], listing_changed=True)
            return _product_record(product.pk)
    except IntegrityError:
        refused = _taken(slug, [spec.sku for spec in specs])
        if refused is None:
            raise
        raise refused from None


def product_update(
    *,
    product_id: int,
    title: str | Unset = UNSET,
    slug: str | Unset = UNSET,
    category_id: int | Unset = UNSET,
    brand_slug: str | Unset | None = UNSET,
    description: str | Unset = UNSET,
    attributes: dict[str, str] | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    is_featured: bool | Unset = UNSET,
    popularity: int | Unset = UNSET,
    published_at: datetime | Unset = UNSET,
    variants: Sequence[VariantChanges] = (),
) -> ProductRecord:
    """Change the product fields given (UNSET: left as they are; brand_slug None: no brand) and, by SKU, some of
    its variants (VariantChanges), all or nothing. A changed slug also tells the shop to forget the old page.
    Raises ProductNotFound, CatalogInvalid (variants' problems by index)."""
    given = {"title": title, "slug": slug, "category_id": category_id, "brand_slug": brand_slug,
             "description": description, "attributes": attributes, "is_active": is_active,
             "is_featured": is_featured, "popularity": popularity, "published_at": published_at}  # fmt: skip
    given = {k: v for k, v in given.items() if v is not UNSET}
    changes = list(variants)
    try:
        with atomic(module="catalog"):
            product = unique(Product.objects.select_for_update().filter(pk=product_id))
            if product is None:
                raise ProductNotFound(product_id)
            errors = Errors()
            brand = _check_product(errors, product.pk, given)
            skus = [change.sku for change in changes]
            own = {v.sku: v for v in Variant.objects.select_for_update().filter(product_id=product.pk, sku__in=skus)}
            listing = False
            seen: dict[str, int] = {}
            if len(changes) > VARIANTS_MAX:
                errors.add("variants", f"At most {VARIANTS_MAX} variants at once.")
                changes = []
            for index, change in enumerate(changes):
                where = {"within": "variants", "index": index}
                if change.sku in seen:
                    errors.add("sku", f"The SKU {change.sku!r} is given twice (also item {seen[change.sku]}).", **where)
                elif change.sku not in own:
                    errors.add("sku", f"This product has no variant with the SKU {change.sku!r}.", **where)
                else:
                    seen[change.sku] = index
                    listing |= _apply_changes(own[change.sku], change, errors, **where)
            if errors:
                raise CatalogInvalid(errors.found)
            old_slug = product.slug
            for field, value in given.items():
                if field == "brand_slug":
                    listing |= product.brand_id != (brand.pk if brand else None)
                    product.brand = brand
                    continue
                if field in ("is_active", "is_featured"):
                    value = bool(value)
                listing |= field in _LISTING_FIELDS and getattr(product, field) != value
                setattr(product, field, value)
            product.save()
            for variant in own.values():
                if variant.sku in seen:
                    variant.save()
            refresh_products(product_ids=[product.pk], listing_changed=True if listing else None)
            if product.slug != old_slug:  # the shop caches the page under its slug
                publish(ProductChanged(product_id=product.pk, slug=old_slug, listing_changed=True))
            return _product_record(product.pk)
    except IntegrityError:
        refused = _taken(slug, [], product_id)
        if refused is None:
            raise
        raise refused from None


def variant_create(*, product_id: int, spec: VariantSpec) -> VariantRecord:
    """A new variant of a product, with its stock (spec.on_hand); position None puts it last.
    Raises ProductNotFound, CatalogInvalid."""
    try:
        with atomic(module="catalog"):
            if unique(Product.objects.select_for_update().filter(pk=product_id)) is None:
                raise ProductNotFound(product_id)
            errors = Errors()
            _check_specs(errors, [spec], within=None)
            if errors:
                raise CatalogInvalid(errors.found)
            last = Variant.objects.filter(product_id=product_id).aggregate(last=Max("position"))["last"]
            _create_variants(product_id, [spec], 0 if last is None else last + 1)
            refresh_products(product_ids=[product_id], listing_changed=True)
            return _variant_record(Variant.objects.select_related("stock").get(sku=spec.sku))
    except IntegrityError:
        if Variant.objects.filter(sku=spec.sku).exists():
            raise CatalogInvalid({"sku": [f"A variant with the SKU {spec.sku!r} exists already."]}) from None
        raise


def variant_update(
    *,
    sku: str,
    price: Decimal | Unset = UNSET,
    compare_at_price: Decimal | Unset | None = UNSET,
    options: tuple[tuple[str, str], ...] | Unset = UNSET,
    weight_grams: int | Unset = UNSET,
    position: int | Unset = UNSET,
    is_active: bool | Unset = UNSET,
) -> VariantRecord:
    """Change the fields given of the variant with this SKU (compare_at_price None: none). Stock is set with
    stock_set. Raises UnknownSku, CatalogInvalid."""
    changes = VariantChanges(sku=sku, price=price, compare_at_price=compare_at_price, options=options,
                             weight_grams=weight_grams, position=position, is_active=is_active)  # fmt: skip
    product_id = Variant.objects.filter(sku=sku).values_list("product_id", flat=True).first()
    if product_id is None:
        raise UnknownSku(sku)
    with atomic(module="catalog"):
        list(Product.objects.select_for_update().filter(pk=product_id).values_list("pk"))  # first, as product_update
        variant = unique(Variant.objects.select_for_update(of=("self",)).select_related("stock").filter(sku=sku))
        if variant is None:
            raise UnknownSku(sku)
        errors = Errors()
        listing = _apply_changes(variant, changes, errors)
        if errors:
            raise CatalogInvalid(errors.found)
        variant.save()
        refresh_products(product_ids=[variant.product_id], listing_changed=True if listing else None)
        return _variant_record(variant)
