"""Catalog's REST endpoints: categories, products with their variants, variants, stock.

Reads use catalog's models (a fixed number of queries per page, whatever its size); every write calls one of
catalog's services (imported from its private modules, as catalog.services does), which checks it, saves it in one
transaction and publishes what an edit in the admin publishes.
Reads need catalog:read (which catalog:write and inventory:write include); category, product and variant writes
catalog:write; stock writes inventory:write.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import F, Prefetch
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from catalog.api import serializers as io
from catalog.api.filters import CategoryFilter, ProductFilter, StockFilter, VariantFilter
from catalog.categories import category_create, category_update
from catalog.data import (
    CatalogInvalid,
    CategoryNotFound,
    ProductNotFound,
    StockBelowReserved,
    StockLevelsRefused,
    UnknownSku,
    VariantChanges,
    VariantSpec,
)
from catalog.models import Category, Product, ProductImage, StockItem, Variant
from catalog.products import product_create, product_update, variant_create, variant_update
from catalog.stock import stock_set, stock_set_many
from kernel.api import Conflict, FreshListCache
from kernel.db import db_for_module

READ, WRITE, INVENTORY = "catalog:read", "catalog:write", "inventory:write"
# API field names of the services' arguments, for the errors they report
FIELD_NAMES = {"category_id": "category", "parent_id": "parent", "brand_slug": "brand"}
SKU_PATH = OpenApiParameter("sku", OpenApiTypes.STR, OpenApiParameter.PATH, description="The variant's SKU.")


def refused(exc: CatalogInvalid) -> serializers.ValidationError:
    return serializers.ValidationError({FIELD_NAMES.get(name, name): problem for name, problem in exc.errors.items()})


def given(data: dict[str, Any], **names: str) -> dict[str, Any]:
    """The validated fields that were sent, under the services' argument names ({api name: argument name})."""
    return {names.get(key, key): value for key, value in data.items()}


def catalog_freshness() -> tuple:
    """The latest change to anything a product list shows: a product (its data, prices, going in or out of
    stock), a variant, a stock level (every hold and sale sets it), a category. Each is an index-only lookup.

    Fixed SQL, on every read of a cached list: the ORM's compiling of four subqueries costs more than running
    them (0.3 ms of the 1.4 ms a cached answer takes)."""
    connection = connections[db_for_module("catalog")]
    quote = connection.ops.quote_name
    parts = ", ".join(f"(SELECT MAX({quote('updated_at')}) FROM {quote(model._meta.db_table)})"  # noqa: S608
                      for model in (Product, Variant, StockItem, Category))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {parts}")
        return tuple(cursor.fetchone())


class CatalogApiView(generics.GenericAPIView):
    def created(self, data: Any, url_name: str, **kwargs: Any) -> Response:
        location = reverse(url_name, kwargs={"version": self.request.version, **kwargs})
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})

    def valid(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


# ---------------------------------------------------------------- categories


class CategoryList(CatalogApiView, generics.ListAPIView):
    """Categories (inactive ones too); `updated_since` for incremental sync."""

    required_scopes = {"GET": READ, "POST": WRITE}
    queryset = Category.objects.all()
    serializer_class = io.CategorySerializer
    filterset_class = CategoryFilter
    ordering = "-updated_at"
    ordering_fields = ("updated_at", "id", "position", "name")

    @extend_schema(request=io.CategoryInputSerializer, responses={201: io.CategorySerializer})
    def post(self, request, *args, **kwargs):
        data = self.valid(io.CategoryInputSerializer)
        try:
            record = category_create(**given(data, parent="parent_id"))
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        category = Category.objects.get(pk=record.id)
        return self.created(io.CategorySerializer(category).data, "api-category-detail", pk=record.id)


class CategoryDetail(CatalogApiView, generics.RetrieveAPIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}
    queryset = Category.objects.all()
    serializer_class = io.CategorySerializer

    @extend_schema(request=io.CategoryInputSerializer, responses={200: io.CategorySerializer})
    def patch(self, request, *args, **kwargs):
        serializer = io.CategoryInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            category_update(category_id=kwargs["pk"], **given(serializer.validated_data, parent="parent_id"))
        except CategoryNotFound as exc:
            raise Http404 from exc
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        return Response(io.CategorySerializer(Category.objects.get(pk=kwargs["pk"])).data)


# ---------------------------------------------------------------- products


def products():
    """Products with everything their representation shows: 4 queries a page (products with category and brand,
    variants with stock, images), whatever its size."""
    return Product.objects.select_related("category", "brand").prefetch_related(
        Prefetch("variants", queryset=Variant.objects.select_related("stock").order_by("position", "id")),
        Prefetch("images", queryset=ProductImage.objects.order_by("position", "id")),
    )


def variant_specs(items: list[dict[str, Any]]) -> list[VariantSpec]:
    return [VariantSpec(**item) for item in items]


def variant_changes(items: list[dict[str, Any]]) -> list[VariantChanges]:
    return [VariantChanges(**item) for item in items]


class ProductList(FreshListCache, CatalogApiView, generics.ListAPIView):
    """Products with their variants and images, inactive ones too. `updated_since` catches any change to a product,
    its variants' prices or options, or its stock."""

    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = io.ProductSerializer
    filterset_class = ProductFilter
    ordering = "-updated_at"
    ordering_fields = ("updated_at", "created_at", "id", "title")

    def get_queryset(self):
        return products()

    def list_freshness(self) -> tuple:
        return catalog_freshness()

    @extend_schema(request=io.ProductCreateSerializer, responses={201: io.ProductSerializer})
    def post(self, request, *args, **kwargs):
        data = self.valid(io.ProductCreateSerializer)
        data["variants"] = variant_specs(data.get("variants", []))
        try:
            record = product_create(**given(data, category="category_id", brand="brand_slug"))
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        return self.created(io.ProductSerializer(products().get(pk=record.id)).data, "api-product-detail", pk=record.id)


class ProductDetail(CatalogApiView, generics.RetrieveAPIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}
    serializer_class = io.ProductSerializer

    def get_queryset(self):
        return products()

    @extend_schema(request=io.ProductUpdateSerializer, responses={200: io.ProductSerializer})
    def patch(self, request, *args, **kwargs):
        data = self.valid(io.ProductUpdateSerializer)
        if "variants" in data:
            data["variants"] = variant_changes(data["variants"])
        try:
            product_update(product_id=kwargs["pk"], **given(data, category="category_id", brand="brand_slug"))
        except ProductNotFound as exc:
            raise Http404 from exc
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        return Response(io.ProductSerializer(products().get(pk=kwargs["pk"])).data)


# ---------------------------------------------------------------- variants


def variants():
    return Variant.objects.select_related("stock")


class ProductVariantList(CatalogApiView, generics.ListAPIView):
    """The variants of one product (inactive ones too), and adding one to it."""

    required_scopes = {"GET": READ, "POST": WRITE}
    serializer_class = io.VariantSerializer
    filterset_class = None
    ordering = "position"
    ordering_fields = ("position", "id", "sku", "updated_at")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Variant.objects.none()
        if not Product.objects.filter(pk=self.kwargs["pk"]).exists():
            raise Http404
        return variants().filter(product_id=self.kwargs["pk"])

    @extend_schema(request=io.VariantInputSerializer, responses={201: io.VariantSerializer})
    def post(self, request, *args, **kwargs):
        data = self.valid(io.VariantInputSerializer)
        try:
            record = variant_create(product_id=kwargs["pk"], spec=VariantSpec(**data))
        except ProductNotFound as exc:
            raise Http404 from exc
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        return self.created(
            io.VariantSerializer(variants().get(pk=record.id)).data, "api-variant-detail", sku=record.sku
        )


class VariantList(CatalogApiView, generics.ListAPIView):
    """Every product's variants, inactive ones too. Their stock changes show in /api/v1/stock/ (and in the
    product's updated_at), not in the variant's."""

    required_scopes = {"GET": READ}
    serializer_class = io.VariantSerializer
    filterset_class = VariantFilter
    ordering = "-updated_at"
    ordering_fields = ("updated_at", "id", "sku")

    def get_queryset(self):
        return variants()


@extend_schema(parameters=[SKU_PATH])
class VariantDetail(CatalogApiView, generics.RetrieveAPIView):
    required_scopes = {"GET": READ, "PATCH": WRITE}
    serializer_class = io.VariantSerializer
    lookup_field = "sku"

    def get_queryset(self):
        return variants()

    @extend_schema(request=io.VariantChangesSerializer, responses={200: io.VariantSerializer})
    def patch(self, request, *args, **kwargs):
        data = self.valid(io.VariantChangesSerializer)
        try:
            variant_update(sku=kwargs["sku"], **data)
        except UnknownSku as exc:
            raise Http404 from exc
        except CatalogInvalid as exc:
            raise refused(exc) from exc
        return Response(io.VariantSerializer(variants().get(sku=kwargs["sku"])).data)


# ---------------------------------------------------------------- stock


def stock():
    return StockItem.objects.annotate(sku=F("variant__sku"))  # available: the model's property


class StockList(CatalogApiView, generics.ListAPIView):
    """Stock levels; `sku=A,B,C` for some SKUs, `updated_since` for what changed (reservations and sales too)."""

    required_scopes = {"GET": READ}
    serializer_class = io.StockLevelSerializer
    filterset_class = StockFilter
    ordering = "-updated_at"
    ordering_fields = ("updated_at", "on_hand")

    def get_queryset(self):
        return stock()


@extend_schema(parameters=[SKU_PATH])
class StockDetail(CatalogApiView, generics.RetrieveAPIView):
    """The stock of one SKU. PUT sets the counted stock (a stock-take, a delivery booked in); it cannot go below
    what is reserved for orders in progress (409)."""

    required_scopes = {"GET": READ, "PUT": INVENTORY}
    serializer_class = io.StockLevelSerializer
    lookup_field = "sku"

    def get_queryset(self):
        return stock()

    @extend_schema(request=io.StockSetSerializer, responses={200: io.StockLevelSerializer})
    def put(self, request, *args, **kwargs):
        data = self.valid(io.StockSetSerializer)
        try:
            level = stock_set(sku=kwargs["sku"], on_hand=data["on_hand"])
        except UnknownSku as exc:
            raise Http404 from exc
        except StockBelowReserved as exc:
            raise Conflict(f"On-hand stock cannot go below what is reserved for orders in progress ({exc}).") from exc
        return Response(io.StockLevelSerializer(level).data)


class StockBulk(CatalogApiView):
    """Set the counted stock of up to 500 SKUs in one transaction, all or nothing: if any item is wrong (a SKU
    unknown or sent twice, stock below what is reserved), the 400 lists every one by its index and nothing
    changes."""

    required_scopes = {"POST": INVENTORY}
    serializer_class = io.StockBulkSerializer

    @extend_schema(request=io.StockBulkSerializer, responses={200: io.StockBulkResultSerializer})
    def post(self, request, *args, **kwargs):
        data = self.valid(io.StockBulkSerializer)
        try:
            levels = stock_set_many(levels=[(item["sku"], item["on_hand"]) for item in data["items"]])
        except StockLevelsRefused as exc:
            problems: dict[int, dict[str, list[str]]] = {}
            for problem in exc.problems:
                problems.setdefault(problem.index, {}).setdefault(problem.field, []).append(problem.message)
            raise serializers.ValidationError({"items": problems}) from exc
        return Response(io.StockBulkResultSerializer({"items": levels}).data)
