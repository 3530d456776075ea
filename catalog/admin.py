"""Catalog admin. Saves go through catalog's services (projection, stock, categories), which keep listings right
and tell the shop (events)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from catalog.categories import categories_changed
from catalog.data import StockBelowReserved, colour_of
from catalog.models import Brand, Category, Product, ProductImage, StockItem, Variant
from catalog.projection import images_render, refresh_products
from catalog.stock import stock_set


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change:  # the brand name shows in listings and search
            refresh_products(product_ids=obj.products.values_list("pk", flat=True), listing_changed=True)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "parent", "position", "is_active")
    list_filter = ("is_active", "parent")
    list_editable = ("position", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("parent",)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        categories_changed(category_id=obj.pk)

    def delete_model(self, request, obj) -> None:
        pk = obj.pk
        super().delete_model(request, obj)
        categories_changed(category_id=pk)


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("sku", "options", "price", "compare_at_price", "currency", "weight_grams", "position", "is_active")


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ("image", "alt_text", "colour", "position")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("title", "brand_name", "category", "min_price", "in_stock", "is_active", "is_featured")
    list_filter = ("is_active", "is_featured", "in_stock", "category", "brand")
    search_fields = ("title", "slug", "variants__sku")
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("brand", "category")
    readonly_fields = ("min_price", "max_price", "in_stock", "created_at", "updated_at")
    inlines = (VariantInline, ProductImageInline)
    list_select_related = ("category",)
    fieldsets = (
        (None, {"fields": ("title", "slug", "brand", "category", "description", "attributes")}),
        ("Selling", {"fields": ("is_active", "is_featured", "popularity", "published_at")}),
        ("Computed from variants and stock", {"fields": ("min_price", "max_price", "in_stock")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        product_id = form.instance.pk
        for problem in match_picture_colours(product_id=product_id):
            messages.warning(request, problem)
        images_render(product_id=product_id)
        refresh_products(product_ids=[product_id], listing_changed=True)


def match_picture_colours(*, product_id: int) -> list[str]:
    """Spell each picture's colour as the product's variants do ("navy" -> "Navy"); returns a sentence for each
    picture whose colour no variant has (it then shows with no variant)."""
    colours: dict[str, str] = {}
    for options in Variant.objects.filter(product_id=product_id).values_list("options", flat=True):
        colour = colour_of(options)
        colours.setdefault(colour.lower(), colour)
    problems = []
    for image in ProductImage.objects.filter(product_id=product_id).exclude(colour=""):
        spelled = colours.get(image.colour.strip().lower())
        if spelled is None:
            known = ", ".join(sorted(c for c in colours.values() if c)) or "none"
            problems.append(
                f"The picture “{image.alt_text}” is for the colour “{image.colour}”, which no variant has "
                f"(the variants' colours: {known}). Correct it, or leave it blank to show it with every colour."
            )
        elif spelled != image.colour:
            ProductImage.objects.filter(pk=image.pk).update(colour=spelled)
    return problems


class StockForm(forms.ModelForm):
    class Meta:
        model = StockItem
        fields = ("on_hand",)


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    """Stock levels. Changing on-hand stock goes through stock_set (catalog.stock)."""

    form = StockForm
    list_display = ("sku", "product", "on_hand", "reserved", "available")
    list_editable = ("on_hand",)
    search_fields = ("variant__sku", "variant__product__title")
    list_select_related = ("variant__product",)
    readonly_fields = ("reserved",)

    def has_add_permission(self, request) -> bool:
        return False  # every variant has its stock row

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(ordering="variant__sku", description="SKU")
    def sku(self, obj: StockItem) -> str:
        return obj.variant.sku

    @admin.display(ordering="variant__product__title")
    def product(self, obj: StockItem) -> str:
        return obj.variant.product.title

    def save_model(self, request, obj, form, change) -> None:
        try:
            stock_set(sku=obj.variant.sku, on_hand=obj.on_hand)
        except StockBelowReserved as exc:
            messages.error(request, f"Not saved: {exc}.")
