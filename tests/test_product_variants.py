"""The product page's variant picker (options grouped, single values, sold-out and missing combinations), pictures
per colour (the detail service, the page, its cache) and the cart's thumbnails of the line's colour."""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from catalog.models import ProductImage
from catalog.services import OptionGroup, product_detail, refresh_products, stock_set, variants_get
from tests.factories import make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]


def picture(product, colour: str, position: int = 0) -> ProductImage:
    name = f"products/{product.pk}/{colour.lower() or 'detail'}-{position}"
    return ProductImage.objects.create(
        product=product, image=f"{name}.jpg", listing=f"{name}.listing.jpg", large=f"{name}.large.jpg",
        alt_text=f"{product.title} in {colour.lower() or 'any colour'}", colour=colour, position=position,
    )  # fmt: skip


@pytest.fixture
def tee():
    """Rose and Navy, S M L; Navy M sold out, there is no Navy L. A picture per colour and one of the label."""
    shelf = make_category("Tops")
    product = make_product(
        "Linen Tee",
        shelf,
        variants=[
            {"options": {"Colour": "Rose", "Size": "S"}, "price": "20.00", "stock": 4},
            {"options": {"Colour": "Rose", "Size": "M"}, "price": "20.00", "stock": 4},
            {"options": {"Colour": "Rose", "Size": "L"}, "price": "22.00", "stock": 4},
            {"options": {"Colour": "Navy", "Size": "S"}, "price": "20.00", "stock": 3},
            {"options": {"Colour": "Navy", "Size": "M"}, "price": "20.00", "stock": 0},
        ],
    )
    picture(product, "Rose", 0)
    picture(product, "Navy", 1)
    picture(product, "", 2)
    refresh_products(product_ids=[product.pk])
    detail = product_detail(slug=product.slug)
    return {"product": product, "detail": detail, **{"/".join(dict(v.options).values()): v for v in detail.variants}}


def test_options_are_grouped_with_their_values_in_the_variants_order(tee):
    detail = tee["detail"]
    assert detail.option_groups == (
        OptionGroup(name="Colour", key="colour", values=("Rose", "Navy"), is_colour=True),
        OptionGroup(name="Size", key="size", values=("S", "M", "L"), is_colour=False),
    )
    assert detail.has_picker


def test_sizes_follow_the_colour_chosen(tee):
    (_, colours), (_, sizes) = tee["detail"].choices(tee["Navy/S"])
    assert [(c.value, c.selected, c.state, c.disabled) for c in colours] == [
        ("Rose", False, "available", False),
        ("Navy", True, "available", False),
    ]
    assert colours[0].swatch.startswith("#"), "a swatch is drawn in its colour"
    assert [(c.value, c.selected, c.state, c.disabled) for c in sizes] == [
        ("S", True, "available", False),
        ("M", False, "sold-out", True),
        ("L", False, "missing", True),
    ]
    _, (_, rose_sizes) = tee["detail"].choices(tee["Rose/M"])
    assert [c.state for c in rose_sizes] == ["available", "available", "available"]


def test_a_sold_out_colour_stays_choosable_and_a_choice_finds_the_variant(tee):
    for variant in (tee["Navy/S"],):
        stock_set(sku=variant.sku, on_hand=0)
    detail = product_detail(slug=tee["product"].slug)
    (_, colours), _ = detail.choices(detail.variants[0])
    navy = colours[1]
    assert (navy.state, navy.disabled) == ("sold-out", False), "its pictures can still be seen"

    assert detail.variant_for({"size": "L"}, current=tee["Rose/S"]).sku == tee["Rose/L"].sku
    assert detail.variant_for({"colour": "Navy", "size": "L"}, current=tee["Rose/L"]).options == (
        ("Colour", "Navy"),
        ("Size", "S"),
    ), "no Navy L: the Navy that keeps the most of the rest"
    assert detail.variant_for({"colour": "Purple"}) is None


def test_an_option_with_one_value_is_a_fact_and_one_variant_needs_no_picker(client):
    shelf = make_category("Trousers")
    chinos = make_product(
        "Black Chinos",
        shelf,
        variants=[
            {"options": {"Colour": "Black", "Waist": "30"}, "price": "50.00", "stock": 2},
            {"options": {"Colour": "Black", "Waist": "32"}, "price": "50.00", "stock": 2},
        ],
    )
    colour, waist = product_detail(slug=chinos.slug).option_groups
    assert colour.single
    assert not waist.single
    page = client.get(f"/p/{chinos.slug}/").content.decode()
    assert '<span class="option-name">Colour:</span> Black' in page
    assert 'name="o_colour"' not in page
    assert page.count('name="o_waist"') == 2

    lamp = make_product("Desk Lamp", shelf, variants=[{"options": {"Colour": "Teal"}, "price": "30.00", "stock": 1}])
    assert not product_detail(slug=lamp.slug).has_picker
    page = client.get(f"/p/{lamp.slug}/").content.decode()
    assert 'type="radio"' not in page
    assert "option-single" not in page
    assert f'name="variant" id="variant-id" value="{lamp.variants.get().pk}"' in page


def test_variants_that_make_no_grid_are_offered_by_their_labels():
    shelf = make_category("Odds")
    odd = make_product(
        "Gift Box",
        shelf,
        variants=[
            {"options": {"Colour": "Red"}, "price": "5.00", "stock": 1},
            {"options": {"Size": "Large"}, "price": "7.00", "stock": 1},
        ],
    )
    detail = product_detail(slug=odd.slug)
    (group,) = detail.option_groups
    assert (group.name, group.values) == ("Option", ("Red", "Large"))
    assert detail.variant_for({"option": "Large"}).price == 7


def test_pictures_per_colour(tee):
    detail = tee["detail"]
    assert [i.colour for i in detail.images] == ["Rose", "Navy", ""]
    assert [i.alt for i in detail.images_for("Navy")] == ["Linen Tee in navy", "Linen Tee in any colour"]
    assert [i.colour for i in detail.images_for("navy")] == ["Navy", ""], "the colour as any variant spells it"
    assert [i.colour for i in detail.images_for("Purple")] == [""]
    assert detail.colour_of(tee["Navy/S"]) == "Navy"


def test_the_page_shows_the_chosen_colours_pictures_even_from_its_cache(
    client, tee, settings, django_capture_on_commit_callbacks
):
    settings.SHOP_PAGE_CACHE_SECONDS = 300
    navy = tee["Navy/S"]
    url = f"/p/{tee['product'].slug}/"
    page = client.get(url, {"variant": navy.id}).content.decode()
    navy_picture = next(i for i in tee["detail"].images if i.colour == "Navy")
    assert f'id="gallery-main" src="{navy_picture.large_url}"' in page
    assert '<li data-colour="Rose" hidden>' in page, "the other colour's pictures are hidden"
    assert '<li data-colour="">' in page, "a picture of every colour shows with each"
    assert 'name="o_colour" value="Navy" checked' in page
    assert re.search(r'name="o_size" value="M" disabled', page), "Navy M is sold out"

    # a picture changed in the admin (it saves, then refreshes the product): the cached page shows it
    ProductImage.objects.filter(colour="Navy").update(large="products/new-navy.large.jpg")
    cached = client.get(url, {"variant": navy.id}).content.decode()
    assert f'id="gallery-main" src="{navy_picture.large_url}"' in cached, "the page comes from the cache"
    with django_capture_on_commit_callbacks(execute=True):
        refresh_products(product_ids=[tee["product"].pk], listing_changed=True)
    page = client.get(url, {"variant": navy.id}).content.decode()
    assert 'id="gallery-main" src="/media/products/new-navy.large.jpg"' in page


def test_each_variant_has_the_picture_of_its_colour(tee):
    found = variants_get(variant_ids=[tee["Rose/S"].id, tee["Navy/S"].id])
    assert found[tee["Rose/S"].id].image_url.endswith("/rose-0.listing.jpg")
    assert found[tee["Navy/S"].id].image_url.endswith("/navy-1.listing.jpg")
    assert product_detail(slug=tee["product"].slug).variants[3].image_url.endswith("/navy-1.listing.jpg")

    # the Navy picture goes: Navy variants fall back to the product's first picture, after the refresh
    ProductImage.objects.filter(colour="Navy").delete()
    refresh_products(product_ids=[tee["product"].pk])
    assert variants_get(variant_ids=[tee["Navy/S"].id])[tee["Navy/S"].id].image_url.endswith("/rose-0.listing.jpg")


def _count_queries(call) -> int:
    with ExitStack() as stack:
        contexts = [stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in connections]
        call()
    return sum(len(c.captured_queries) for c in contexts)


@pytest.mark.parametrize("signed_in", [False, True])
def test_cart_thumbnails_show_each_lines_colour_in_a_constant_number_of_queries(client, tee, signed_in):
    from tests.factories import UserFactory

    if signed_in:
        client.force_login(UserFactory())
    client.post("/cart/add", {"variant": tee["Rose/S"].id, "quantity": "1"})
    client.get("/cart/")  # shows (and so spends) the "Added" message
    one_line = _count_queries(lambda: client.get("/cart/"))
    for key in ("Navy/S", "Rose/M", "Rose/L"):
        client.post("/cart/add", {"variant": tee[key].id, "quantity": "1"})
    client.get("/cart/")
    assert _count_queries(lambda: client.get("/cart/")) == one_line, "four lines cost what one does"

    page = client.get("/cart/").content.decode()
    thumbnails = re.findall(r'\?variant=(\d+)"[^>]*><img src="([^"]+)"', page)
    assert {int(vid): src.rsplit("/", 1)[1] for vid, src in thumbnails} == {
        tee["Rose/S"].id: "rose-0.listing.jpg",
        tee["Navy/S"].id: "navy-1.listing.jpg",
        tee["Rose/M"].id: "rose-0.listing.jpg",
        tee["Rose/L"].id: "rose-0.listing.jpg",
    }


def test_a_capped_quantity_is_a_warning_on_the_page_it_comes_back_to(client, tee):
    response = client.post("/cart/add", {"variant": tee["Navy/S"].id, "quantity": "5", "next": "/cart/"}, follow=True)
    page = response.content.decode()
    expected = "We reduced the quantity of Linen Tee (Navy / S) to 3, because only 3 are left."
    assert f'<p class="message message-warning">{expected}</p>' in page
    assert "message-success" not in page
    response = client.post("/cart/update", {"variant": tee["Navy/S"].id, "quantity": "4"}, follow=True)
    assert '<p class="message message-warning">We reduced the quantity' in response.content.decode()
    assert client.post("/cart/update", {"variant": tee["Navy/S"].id, "quantity": "2"}, HTTP_ACCEPT="application/json")
    answer = client.post("/cart/update", {"variant": tee["Navy/S"].id, "quantity": "3"}, HTTP_ACCEPT="application/json")
    assert (answer.json()["level"], answer.json()["message"]) == ("success", "Cart updated.")


def test_staff_link_a_picture_to_a_colour_in_the_admin(client, tee):
    from tests.factories import SuperuserFactory

    client.force_login(SuperuserFactory())
    product = tee["product"]
    url = f"/admin/catalog/product/{product.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("attributes", "created_at")}
    data.update(
        {"attributes": "{}", "category": product.category_id, "published_at_0": "2026-01-01",
         "published_at_1": "00:00:00", "variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0"}
    )  # fmt: skip
    images = list(product.images.order_by("position"))
    data.update({"images-TOTAL_FORMS": str(len(images)), "images-INITIAL_FORMS": str(len(images))})
    new_colours = ["Rose", "", "navy"]  # the label picture becomes Navy's, the Navy one every colour's
    for i, (image, colour) in enumerate(zip(images, new_colours, strict=True)):
        prefix = f"images-{i}-"
        data.update({f"{prefix}id": image.pk, f"{prefix}product": product.pk, f"{prefix}alt_text": image.alt_text,
                     f"{prefix}colour": colour, f"{prefix}position": image.position})  # fmt: skip
    response = client.post(url, data, follow=True)
    assert response.redirect_chain, response.context["adminform"].form.errors
    assert not [m for m in response.context["messages"] if "no variant has" in str(m)]
    assert [i.colour for i in product.images.order_by("position")] == ["Rose", "", "Navy"], "spelled as variants do"
    navy = variants_get(variant_ids=[tee["Navy/S"].id])[tee["Navy/S"].id]
    assert navy.image_url.endswith("/detail-2.listing.jpg"), "Navy's picture is now the one given its colour"

    data["images-0-colour"] = "Purple"
    response = client.post(url, data, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert any(
        "is for the colour “Purple”, which no variant has (the variants' colours: Navy, Rose)" in m for m in shown
    )


@pytest.mark.postgres
def test_the_product_pages_one_read_on_postgresql_gives_what_its_three_reads_give(db):
    """On PostgreSQL the product page reads its product, variants and pictures in one statement (JSON lists);
    elsewhere in three. Both give the same rows: prices as Decimals, options, stock, missing stock rows, pictures."""
    from catalog import detail
    from catalog.models import ProductImage, StockItem, Variant
    from kernel.db import db_for_module, prepared_rows

    shelf = make_category("Shelf")
    product = make_product("Fjord Coat", shelf, variants=[
        {"options": {"Colour": "Navy", "Size": "M"}, "price": "129.90", "compare_at_price": "149.00", "stock": 3},
        {"options": {"Colour": "Rust", "Size": "L"}, "price": "99.00", "stock": 0, "reserved": 0},
        {"options": {"Colour": "Rust", "Size": "S"}, "price": "0.50", "stock": 7, "reserved": 2},
    ], attributes={"Fabric": "Wool", "Care": "Dry clean"})  # fmt: skip
    first, second, third = Variant.objects.filter(product=product).order_by("position")
    StockItem.objects.filter(variant=second).delete()  # a variant without a stock row
    Variant.objects.filter(pk=third.pk).update(position=0)  # shown first, by position then id
    ProductImage.objects.create(product=product, image="p/a.jpg", alt_text="Front", colour="Navy", position=2)
    ProductImage.objects.create(product=product, image="p/b.jpg", alt_text="Back", position=1)
    alias = db_for_module("catalog")
    row, variants, images = detail._read_in_one(alias, product.slug)
    assert [row] == prepared_rows("catalog.product_by_slug", detail._product_by_slug, product.slug, using=alias)
    assert variants == prepared_rows("catalog.product_variants", detail._product_variants, product.pk, using=alias)
    assert images == prepared_rows("catalog.product_images", detail._product_images, product.pk, using=alias)
    assert [v[0] for v in variants] == [first.pk, third.pk, second.pk]
    assert detail._read_in_one(alias, "no-such-product") is None
