"""Catalog: data rules the database enforces, what listings show, filters and facets, search, the demo seed."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from catalog.models import Product, StockItem, Variant
from catalog.services import (
    ListingQuery,
    PageOutOfRange,
    ProductCard,
    ProductDetail,
    StockBelowReserved,
    UnknownSku,
    category_tree,
    demo_catalog_seed,
    product_detail,
    product_listing,
    product_suggest,
    products_featured,
    products_newest,
    stock_set,
    variants_get,
)
from tests import outbox
from tests.factories import make_brand, make_category, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf():
    """Clothing > Men > T-shirts, Clothing > Women; two brands; five products."""
    clothing = make_category("Clothing")
    men = make_category("Men", clothing)
    tees = make_category("Men's T-shirts", men)
    women = make_category("Women", clothing)
    kestrel, yarrow = make_brand("Kestrel"), make_brand("Yarrow")
    products = {
        "navy": make_product("Kestrel Classic Tee", tees, brand=kestrel, variants=[
            {"options": {"Colour": "Navy", "Size": "S"}, "price": "20.00", "stock": 3},
            {"options": {"Colour": "Navy", "Size": "M"}, "price": "22.00", "stock": 0},
        ], popularity=50),
        "red": make_product("Yarrow Everyday Tee", tees, brand=yarrow, variants=[
            {"options": {"Colour": "Red", "Size": "M"}, "price": "15.00", "stock": 2, "compare_at_price": "19.00"},
        ], popularity=90),
        "gone": make_product("Kestrel Sold-out Tee", tees, brand=kestrel, variants=[
            {"options": {"Colour": "Red", "Size": "L"}, "price": "30.00", "stock": 0},
        ], popularity=10),
        "dress": make_product("Yarrow Wrap Dress", women, brand=yarrow, variants=[
            {"options": {"Colour": "Navy", "Size": "S"}, "price": "60.00", "stock": 4},
        ], popularity=70),
        "hidden": make_product("Kestrel Hidden Tee", tees, brand=kestrel, is_active=False),
    }  # fmt: skip
    return {"clothing": clothing, "men": men, "tees": tees, "women": women, **products}


def titles(listing) -> list[str]:
    return [card.title for card in listing.items]


# ---------------------------------------------------------------- the database refuses bad data


def test_stock_can_never_go_below_zero_or_reserve_more_than_is_there(shelf):
    stock = StockItem.objects.get(variant__sku=shelf["navy"].variants.first().sku)
    for on_hand, reserved in [(-1, 0), (2, 3)]:
        with pytest.raises(IntegrityError), transaction.atomic():
            StockItem.objects.filter(pk=stock.pk).update(on_hand=on_hand, reserved=reserved)


def test_prices_and_skus_are_checked_by_the_database(shelf):
    variant = shelf["navy"].variants.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(price=Decimal("-1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(compare_at_price=Decimal("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.create(product=shelf["red"], sku=variant.sku, price=Decimal("1"))


# ---------------------------------------------------------------- what listings show


def test_listing_fields_follow_variants_and_stock(shelf):
    navy = shelf["navy"]
    assert (navy.min_price, navy.max_price, navy.in_stock, navy.brand_name) == (
        Decimal("20.00"), Decimal("22.00"), True, "Kestrel")  # fmt: skip
    assert not shelf["gone"].in_stock
    assert set(navy.option_values.values_list("key", "value")) == {("colour", "Navy"), ("size", "S"), ("size", "M")}


def test_stock_change_is_published_and_flips_availability(shelf, django_capture_on_commit_callbacks):
    sku = shelf["gone"].variants.get().sku
    with django_capture_on_commit_callbacks(execute=True):
        level = stock_set(sku=sku, on_hand=7)
    assert level.available == 7
    assert Product.objects.get(pk=shelf["gone"].pk).in_stock
    names = [(e["name"], e["payload"]) for e in outbox.events()]
    assert names[0][0] == "catalog.stock.changed.v1"
    assert names[0][1]["available"] == 7
    assert names[1][0] == "catalog.product.changed.v1"
    assert names[1][1]["listing_changed"] is True


def test_stock_set_refuses_what_would_break_the_books(shelf):
    variant = shelf["red"].variants.get()
    StockItem.objects.filter(variant=variant).update(on_hand=5, reserved=4)
    with pytest.raises(StockBelowReserved):
        stock_set(sku=variant.sku, on_hand=3)
    with pytest.raises(UnknownSku):
        stock_set(sku="NO-SUCH-SKU", on_hand=3)
    with pytest.raises(ValueError, match="negative"):
        stock_set(sku=variant.sku, on_hand=-2)
    assert StockItem.objects.get(variant=variant).on_hand == 5


def test_variants_get_reads_price_and_availability_fresh(shelf):
    navy_s, navy_m = shelf["navy"].variants.order_by("position")
    found = variants_get(variant_ids=[navy_s.pk, navy_m.pk, 999_999])
    assert set(found) == {navy_s.pk, navy_m.pk}
    assert found[navy_s.pk].available == 3
    assert found[navy_s.pk].in_stock
    assert not found[navy_m.pk].in_stock


# ---------------------------------------------------------------- category listing, filters and facets


def test_category_lists_its_subcategories_products_but_never_inactive_ones(shelf):
    listing = product_listing(query=ListingQuery(), category_id=shelf["clothing"].pk)
    assert listing.total == 4
    assert "Kestrel Hidden Tee" not in titles(listing)
    men = product_listing(query=ListingQuery(), category_id=shelf["men"].pk)
    assert men.total == 3


def test_filters_combine_and_facet_counts_ignore_their_own_filter(shelf):
    listing = product_listing(query=ListingQuery(brands=("kestrel",), in_stock=True), category_id=shelf["clothing"].pk)
    assert titles(listing) == ["Kestrel Classic Tee"]
    brand = next(f for f in listing.facets if f.key == "brand")
    counts = {v.value: (v.count, v.selected) for v in brand.values}
    assert counts == {"kestrel": (1, True), "yarrow": (2, False)}, "other brands stay selectable with counts"
    assert listing.in_stock_count == 1


def test_option_and_price_filters(shelf):
    navy = product_listing(query=ListingQuery(options=(("colour", ("Navy",)),)), category_id=shelf["clothing"].pk)
    assert sorted(titles(navy)) == ["Kestrel Classic Tee", "Yarrow Wrap Dress"]
    colour = next(f for f in navy.facets if f.key == "o_colour")
    assert {v.value: v.count for v in colour.values} == {"Navy": 2, "Red": 2}
    size = next(f for f in navy.facets if f.key == "o_size")
    assert {v.value: v.count for v in size.values} == {"S": 2, "M": 1}, "counted within the navy products"
    assert [v.value for v in size.values] == ["S", "M"], "sizes in size order, not alphabetical"

    cheap = product_listing(query=ListingQuery(price_max=Decimal("25")), category_id=shelf["clothing"].pk)
    assert sorted(titles(cheap)) == ["Kestrel Classic Tee", "Yarrow Everyday Tee"]
    assert cheap.price_floor == Decimal("15.00")
    assert cheap.price_ceiling == Decimal("60.00"), "the price span ignores the price filter itself"


def test_sorting_and_pagination(shelf):
    def run(**kwargs):
        return product_listing(query=ListingQuery(**kwargs), category_id=shelf["clothing"].pk)

    assert titles(run(sort="price_asc"))[0] == "Yarrow Everyday Tee"
    assert titles(run(sort="price_desc"))[0] == "Yarrow Wrap Dress"
    assert titles(run())[0] == "Yarrow Everyday Tee", "relevance: most popular first"
    with pytest.raises(PageOutOfRange):
        run(page=2)
    with pytest.raises(ValueError, match="per_page"):
        ListingQuery(per_page=1000)


def test_sale_price_is_shown_against_the_compare_at_price(shelf):
    card = next(c for c in product_listing(query=ListingQuery(), category_id=shelf["tees"].pk).items if c.on_sale)
    assert (card.title, card.price_min, card.compare_at_price) == ("Yarrow Everyday Tee", Decimal("15.00"),
                                                                 Decimal("19.00"))  # fmt: skip


def test_product_detail_and_tree(shelf):
    detail = product_detail(slug=shelf["navy"].slug)
    assert [v.label for v in detail.variants] == ["Navy / S", "Navy / M"]
    assert detail.option_names == ("Colour", "Size")
    tree = category_tree()
    assert [c.name for c in tree.ancestors(shelf["tees"].pk)] == ["Clothing", "Men", "Men's T-shirts"]
    assert set(tree.descendant_ids(shelf["clothing"].pk)) == {shelf[k].pk for k in ("clothing", "men", "tees", "women")}


# ---------------------------------------------------------------- search


def test_search_finds_by_title_brand_and_description_and_ranks_titles_first(shelf):
    make_product("Plain Mug", shelf["women"], description="Goes well with a wrap dress.")
    listing = product_listing(query=ListingQuery(), text="wrap dress")
    assert titles(listing)[0] == "Yarrow Wrap Dress"
    assert "Plain Mug" in titles(listing)
    by_brand = product_listing(query=ListingQuery(), text="yarrow")
    assert sorted(titles(by_brand)) == ["Yarrow Everyday Tee", "Yarrow Wrap Dress"]


def test_search_text_is_data_never_sql(shelf):
    for text in ["'); DROP TABLE catalog_product; --", "%_\\", "tee' OR '1'='1", "x" * 2048]:
        listing = product_listing(query=ListingQuery(), text=text)
        assert listing.total in (0, 1, 2, 3)
    assert Product.objects.count() == 5


@pytest.mark.postgres
def test_postgres_search_tolerates_typos_and_weights_title_over_description(shelf):
    speaker = make_product("Soundwave Bluetooth Speaker", shelf["women"], brand=make_brand("Soundwave"))
    make_product("Soundwave Cable", shelf["women"], description="Charges any bluetooth speaker.")
    typo = product_listing(query=ListingQuery(), text="bluetoth speker")
    assert titles(typo)[:1] == [speaker.title]
    exact = product_listing(query=ListingQuery(), text="bluetooth speaker")
    assert titles(exact) == ["Soundwave Bluetooth Speaker", "Soundwave Cable"], "title (A) ranks above description (C)"


def test_suggestions_offer_categories_and_products(shelf):
    found = product_suggest(text="wom")
    assert found[0].kind == "category"
    assert found[0].title == "Women"
    assert any(s.title == "Yarrow Wrap Dress" for s in product_suggest(text="Wrap"))
    assert product_suggest(text="w") == ()


def _shop_links(value, path="") -> list[str]:
    """Where in catalog's returned data a shop URL shows up: a field or property named like one, or a value
    that is a shop path (/p/..., /c/...)."""
    found = []
    if isinstance(value, str):
        if value.startswith(("/p/", "/c/")) or "/p/" in value or "/c/" in value:
            found.append(f"{path} = {value!r}")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _shop_links(item, f"{path}[{key!r}]")
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            found += _shop_links(item, f"{path}[{index}]")
    elif dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value)] + [
            name for name, member in vars(type(value)).items() if isinstance(member, property)
        ]
        found += [
            f"{path}.{name}" for name in names if name == "url" or (name.endswith("_url") and "image" not in name)
        ]
        for f in dataclasses.fields(value):
            found += _shop_links(getattr(value, f.name), f"{path}.{f.name}")
    return found


def test_catalog_returns_slugs_and_ids_never_shop_urls(shelf):
    """The shop builds its own links: catalog's data carries slugs, so it does not depend on the shop's routes."""
    navy = shelf["navy"]
    returned = {
        "tree": category_tree().categories,
        "listing": product_listing(query=ListingQuery()),
        "featured": products_featured(),
        "newest": products_newest(),
        "suggest": product_suggest(text="tee") + product_suggest(text="wom"),
        "detail": product_detail(slug=navy.slug),
        "variants": tuple(variants_get(variant_ids=navy.variants.values_list("pk", flat=True)).values()),
    }
    assert returned["suggest"], "the check must look at something"
    found = [link for name, value in returned.items() for link in _shop_links(value, name)]
    # the pictures' addresses are media URLs, not shop pages (ImageInfo.url and friends)
    assert [link for link in found if ".images[" not in link] == []
    assert {s.slug for s in returned["suggest"]} >= {navy.slug, shelf["women"].slug}
    assert not hasattr(ProductCard, "url")
    assert not hasattr(ProductDetail, "url")
    # the admin's "View on site": the wiring (settings.ABSOLUTE_URL_OVERRIDES) knows the shop's routes
    assert navy.get_absolute_url() == f"/p/{navy.slug}/"
    assert shelf["women"].get_absolute_url() == f"/c/{shelf['women'].slug}/"


# ---------------------------------------------------------------- the demo catalog


def test_demo_seed_is_deterministic_and_idempotent():
    def snapshot():
        return sorted(Variant.objects.values_list("sku", "product__title", "price", "options", "stock__on_hand"))

    first = demo_catalog_seed(products=25, seed=7)
    assert (first.created, first.existing) == (25, 0)
    before = snapshot()
    again = demo_catalog_seed(products=25, seed=7)
    assert (again.created, again.existing) == (0, 25)
    assert snapshot() == before, "running it twice changes nothing"

    Product.objects.all().delete()
    demo_catalog_seed(products=10, seed=7)
    demo_catalog_seed(products=25, seed=7)
    assert snapshot() == before, "the same seed gives the same catalog, however it is built up"
    assert Product.objects.filter(in_stock=True).exists()
    assert all(p.listing_image for p in Product.objects.all())


def test_uploaded_images_get_resized_renditions_through_the_default_storage(shelf, settings, tmp_path):
    from io import BytesIO

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    from catalog.models import ProductImage
    from catalog.services import images_render

    settings.MEDIA_ROOT = tmp_path
    buffer = BytesIO()
    Image.new("RGB", (2400, 1600), (200, 40, 40)).save(buffer, "PNG")
    image = ProductImage.objects.create(
        product=shelf["red"], alt_text="Red tee, front", image=ContentFile(buffer.getvalue(), name="front.png")
    )
    assert images_render(product_id=shelf["red"].pk) == 1
    image.refresh_from_db()
    with default_storage.open(image.listing) as listing, default_storage.open(image.large) as large:
        assert Image.open(listing).size == (480, 320)
        assert Image.open(large).size == (1200, 800)
    assert images_render(product_id=shelf["red"].pk) == 0, "made once"
