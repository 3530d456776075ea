"""Input and output serializers of catalog's REST endpoints. Output serializers read catalog's models (every field
read only); input serializers check the shape of a request, and the services (catalog.services) check the rest.
Every field is listed: what a request sends beyond them, or for a read-only one, is ignored."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from catalog.data import STOCK_BULK_MAX
from catalog.images import media_url
from catalog.models import Category, Product, ProductImage, Variant
from catalog.products import VARIANTS_MAX

MONEY = {"max_digits": 12, "decimal_places": 2, "coerce_to_string": True}
COUNT_MAX = 2_147_483_647  # PositiveIntegerField on PostgreSQL


# ---------------------------------------------------------------- output


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "name", "slug", "parent", "description", "position", "is_active", "updated_at")
        read_only_fields = fields


class VariantSerializer(serializers.ModelSerializer):
    """A variant with what it has available to sell (on hand less reserved; the warehouse figures are under
    /api/v1/stock/)."""

    options = serializers.DictField(child=serializers.CharField(), read_only=True)
    price = serializers.DecimalField(**MONEY, read_only=True)
    compare_at_price = serializers.DecimalField(**MONEY, read_only=True, allow_null=True)
    available = serializers.SerializerMethodField()
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Variant
        fields = (
            "id",
            "sku",
            "product",
            "options",
            "price",
            "compare_at_price",
            "currency",
            "weight_grams",
            "position",
            "is_active",
            "available",
            "in_stock",
            "updated_at",
        )
        read_only_fields = fields

    def get_available(self, variant: Variant) -> int:
        stock = getattr(variant, "stock", None)
        return max(stock.available, 0) if stock is not None else 0

    def get_in_stock(self, variant: Variant) -> bool:
        return variant.is_active and self.get_available(variant) > 0


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    large_url = serializers.SerializerMethodField()
    listing_url = serializers.SerializerMethodField()

    class Meta:
        model = ProductImage
        fields = ("id", "url", "large_url", "listing_url", "alt_text", "position")
        read_only_fields = fields

    def get_url(self, image: ProductImage) -> str:
        return media_url(image.image.name)

    def get_large_url(self, image: ProductImage) -> str:
        return media_url(image.large or image.image.name)

    def get_listing_url(self, image: ProductImage) -> str:
        return media_url(image.listing or image.image.name)


class ProductSerializer(serializers.ModelSerializer):
    """A product with its variants (inactive ones too) and images. min_price, max_price, compare_at_price, currency
    and in_stock are computed from the active variants and their stock."""

    category_slug = serializers.CharField(source="category.slug", read_only=True)
    brand = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    attributes = serializers.DictField(child=serializers.CharField(), read_only=True)
    min_price = serializers.DecimalField(**MONEY, read_only=True, allow_null=True)
    max_price = serializers.DecimalField(**MONEY, read_only=True, allow_null=True)
    compare_at_price = serializers.DecimalField(**MONEY, read_only=True, allow_null=True)
    variants = VariantSerializer(many=True, read_only=True)
    images = ImageSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = (
            "id",
            "title",
            "slug",
            "category",
            "category_slug",
            "brand",
            "brand_name",
            "description",
            "attributes",
            "is_active",
            "is_featured",
            "popularity",
            "published_at",
            "created_at",
            "updated_at",
            "currency",
            "min_price",
            "max_price",
            "compare_at_price",
            "in_stock",
            "variants",
            "images",
        )
        read_only_fields = fields


class StockLevelSerializer(serializers.Serializer):
    """Stock of one SKU: on hand (counted), reserved (held for orders in progress), available (on hand less
    reserved). Reads StockItem rows annotated with their sku, and catalog.services.StockLevel."""

    sku = serializers.CharField(read_only=True)
    on_hand = serializers.IntegerField(read_only=True)
    reserved = serializers.IntegerField(read_only=True)
    available = serializers.IntegerField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class StockBulkResultSerializer(serializers.Serializer):
    items = StockLevelSerializer(many=True, read_only=True)


# ---------------------------------------------------------------- input


class OptionsField(serializers.DictField):
    """Variant options, e.g. {"Size": "M", "Colour": "Navy"}: names and values are text."""

    child = serializers.CharField(max_length=120)

    def to_internal_value(self, data):
        options = super().to_internal_value(data)
        if any(not name.strip() or len(name) > 60 for name in options):
            raise serializers.ValidationError("Option names must not be blank and have at most 60 characters.")
        return tuple(options.items())


class CategoryInputSerializer(serializers.Serializer):
    """A category to create (PATCH: any of these fields). slug: made from the name when left out."""

    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=140, required=False)
    parent = serializers.IntegerField(required=False, allow_null=True, help_text="The parent's id; null: top level.")
    description = serializers.CharField(required=False, allow_blank=True)
    position = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    is_active = serializers.BooleanField(required=False)


class VariantInputSerializer(serializers.Serializer):
    """A new variant. It starts with no stock: set it with PUT /api/v1/stock/{sku}/ (inventory:write)."""

    sku = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=64,
        help_text="Letters, digits, dots, underscores and hyphens; unique across the shop.",
    )
    price = serializers.DecimalField(**MONEY, min_value=0)
    compare_at_price = serializers.DecimalField(
        **MONEY, min_value=0, required=False, allow_null=True, help_text="The price before a reduction; null: none."
    )
    options = OptionsField(required=False)
    currency = serializers.CharField(
        required=False, max_length=3, help_text=f"The shop's currency ({settings.SHOP_CURRENCY}) is the only one."
    )
    weight_grams = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    position = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    is_active = serializers.BooleanField(required=False)


class VariantChangesSerializer(serializers.Serializer):
    """Changes to a variant: only the fields sent change."""

    price = serializers.DecimalField(**MONEY, min_value=0, required=False)
    compare_at_price = serializers.DecimalField(**MONEY, min_value=0, required=False, allow_null=True)
    options = OptionsField(required=False)
    weight_grams = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    position = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    is_active = serializers.BooleanField(required=False)


class ProductVariantChangesSerializer(VariantChangesSerializer):
    """Changes to one of the product's variants, found by its SKU."""

    sku = serializers.CharField(max_length=64)


class ProductFieldsSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=220, required=False, help_text="Made from the title when left out.")
    category = serializers.IntegerField(help_text="The category's id.")
    brand = serializers.CharField(required=False, allow_null=True, max_length=140, help_text="The brand's slug.")
    description = serializers.CharField(required=False, allow_blank=True)
    attributes = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text='Shown as a table: {"Material": "Cotton"}.',
    )
    is_active = serializers.BooleanField(required=False)
    is_featured = serializers.BooleanField(required=False)
    popularity = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    published_at = serializers.DateTimeField(required=False)


class ProductCreateSerializer(ProductFieldsSerializer):
    """A new product with its variants, created all or nothing."""

    variants = serializers.ListField(child=VariantInputSerializer(), required=False, max_length=VARIANTS_MAX)


class ProductUpdateSerializer(ProductFieldsSerializer):
    """Changes to a product: only the fields sent change; `variants` changes existing variants by SKU (add one
    with POST /api/v1/products/{id}/variants/)."""

    title = serializers.CharField(max_length=200, required=False)
    category = serializers.IntegerField(required=False, help_text="The category's id.")
    variants = serializers.ListField(child=ProductVariantChangesSerializer(), required=False, max_length=VARIANTS_MAX)


class StockSetSerializer(serializers.Serializer):
    on_hand = serializers.IntegerField(min_value=0, max_value=COUNT_MAX, help_text="The counted stock.")


class StockBulkItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    on_hand = serializers.IntegerField(min_value=0, max_value=COUNT_MAX)


class StockBulkSerializer(serializers.Serializer):
    items = serializers.ListField(child=StockBulkItemSerializer(), min_length=1, max_length=STOCK_BULK_MAX)
