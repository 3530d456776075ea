"""Filters and ordering of catalog's REST lists."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.filters import OrderingFilter

from catalog.models import Category, Product, StockItem, Variant


class StableOrderingFilter(OrderingFilter):
    """?ordering= as DRF's, with the primary key added last: rows that tie on the chosen field (many products
    refreshed at the same instant, the same title) keep one order, so the cursor neither repeats nor skips them."""

    def get_ordering(self, request, queryset, view):
        ordering = list(super().get_ordering(request, queryset, view) or ())
        if ordering and ordering[-1].lstrip("-") not in ("pk", "id"):
            ordering.append("-pk" if ordering[0].startswith("-") else "pk")
        return ordering

    def get_schema_operation_parameters(self, view):
        fields = [name for name, _ in self.get_valid_fields(view.get_queryset(), view, {"request": None})]
        default = view.ordering if isinstance(view.ordering, str) else ",".join(view.ordering)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"The order of the results (a `-` before the field: descending); {default} if left out.",
                "schema": {"type": "string", "enum": [f"{sign}{name}" for name in fields for sign in ("", "-")]},
            }
        ]


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An object's id (a whole number)."""

    field_class = forms.IntegerField


@extend_schema_field(OpenApiTypes.BOOL)
class BoolFilter(django_filters.TypedChoiceFilter):
    """true or false (1 or 0); anything else is a 400, where django-filter's BooleanFilter would ignore it."""

    def __init__(self, *args, **kwargs):
        choices = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]
        super().__init__(*args, choices=choices, coerce=lambda value: value in ("true", "1"), **kwargs)


class SkuListFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """One SKU or several, comma-separated."""


def updated_since(field: str = "updated_at") -> django_filters.IsoDateTimeFilter:
    return django_filters.IsoDateTimeFilter(
        field_name=field, lookup_expr="gte", help_text="Changed at or after this time (ISO 8601)."
    )


class CategoryFilter(django_filters.FilterSet):
    parent = IdFilter(field_name="parent_id", help_text="Children of the category with this id.")
    is_root = BoolFilter(field_name="parent", lookup_expr="isnull", help_text="Top-level only.")
    is_active = BoolFilter()
    updated_since = updated_since()

    class Meta:
        model = Category
        fields = ("parent", "is_root", "is_active", "updated_since")


class ProductFilter(django_filters.FilterSet):
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
        if value.isdigit():
            return queryset.filter(Q(category_id=int(value)) | Q(category__slug=value))
        return queryset.filter(category__slug=value)

    def filter_sku(self, queryset, name, value):
        return queryset.filter(Exists(Variant.objects.filter(product_id=OuterRef("pk"), sku__in=value)))


class VariantFilter(django_filters.FilterSet):
    product = IdFilter(field_name="product_id", help_text="The product's id.")
    sku = SkuListFilter(field_name="sku", lookup_expr="in", help_text="One SKU or several, comma-separated.")
    is_active = BoolFilter()
    updated_since = updated_since()

    class Meta:
        model = Variant
        fields = ("product", "sku", "is_active", "updated_since")


class StockFilter(django_filters.FilterSet):
    sku = SkuListFilter(field_name="variant__sku", lookup_expr="in", help_text="One SKU or several, comma-separated.")
    updated_since = updated_since()

    class Meta:
        model = StockItem
        fields = ("sku", "updated_since")
