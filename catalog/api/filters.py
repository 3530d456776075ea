"""Filters and ordering of catalog's REST lists."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q

from catalog.models import Category, Product, StockItem, Variant
from kernel.api import BoolFilter, IdFilter, StrictFilterSet, updated_since


class SkuListFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """One SKU or several, comma-separated."""


class CategoryFilter(StrictFilterSet):
    parent = IdFilter(field_name="parent_id", help_text="Children of the category with this id.")
    is_root = BoolFilter(field_name="parent", lookup_expr="isnull", help_text="Top-level only.")
    is_active = BoolFilter()
    updated_since = updated_since()

    class Meta:
        model = Category
        fields = ("parent", "is_root", "is_active", "updated_since")


class ProductFilter(StrictFilterSet):
    category = django_filters.CharFilter(
        method="filter_category", help_text="The category's id or slug (that category only, not its subcategories)."
    )
    brand = django_filters.CharFilter(field_name="brand__slug", help_text="The brand's slug.")
    is_active = BoolFilter()
    in_stock = BoolFilter(help_text="Some active variant has stock available.")
    sku = SkuListFilter(method="filter_sku", help_text="Products with a variant of this SKU (or of one of these).")
    updated_since = updated_since()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Product
        fields = (
            "category",
            "brand",
            "is_active",
            "in_stock",
            "sku",
            "updated_since",
            "created_after",
            "created_before",
        )

    def filter_category(self, queryset, name, value):
        value = value.strip()
        if value.isascii() and value.isdigit() and len(value) <= 18:  # a bigint
            return queryset.filter(Q(category_id=int(value)) | Q(category__slug=value))
        return queryset.filter(category__slug=value)

    def filter_sku(self, queryset, name, value):
        return queryset.filter(Exists(Variant.objects.filter(product_id=OuterRef("pk"), sku__in=value)))


class VariantFilter(StrictFilterSet):
    product = IdFilter(field_name="product_id", help_text="The product's id.")
    sku = SkuListFilter(field_name="sku", lookup_expr="in", help_text="One SKU or several, comma-separated.")
    is_active = BoolFilter()
    updated_since = updated_since()

    class Meta:
        model = Variant
        fields = ("product", "sku", "is_active", "updated_since")


class StockFilter(StrictFilterSet):
    sku = SkuListFilter(field_name="variant__sku", lookup_expr="in", help_text="One SKU or several, comma-separated.")
    updated_since = updated_since()

    class Meta:
        model = StockItem
        fields = ("sku", "updated_since")
