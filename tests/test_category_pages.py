"""Category and search pages' active filter chips and filter panel, the category bar, and the info pages
(delivery, returns, terms, privacy, contact) with their footer links and sitemap entries."""

from __future__ import annotations

import importlib
import re
from html import unescape
from io import StringIO
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from catalog.services import category_update
from shop.models import InfoPage
from tests.factories import SuperuserFactory, make_brand, make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]

CHIP = re.compile(r'<a class="chip chip-remove" href="([^"]*)" aria-label="([^"]*)">')


@pytest.fixture
def catalog():
    shoes = make_category("Shoes")
    make_category("Bags")
    brands = [make_brand(name) for name in ("Kestrel", "Yarrow", "Zephyr")]
    colours = ["Black", "White", "Red", "Blue", "Green", "Grey", "Navy", "Olive", "Pink", "Sand", "Teal", "Rust"]
    for i in range(36):
        make_product(
            f"{brands[i % 3].name} Runner {i:02d}",
            shoes,
            brand=brands[i % 3],
            variants=[{"options": {"Colour": colours[i % 12], "EU size": str(40 + i % 4)},
                       "price": f"{40 + i}.00", "stock": i % 4}],
        )  # fmt: skip
    return shoes


def chips(page: str) -> dict[str, dict[str, list[str]]]:
    """Accessible name of each chip -> the query of the link that removes it."""
    return {unescape(name): parse_qs(urlsplit(unescape(href)).query) for href, name in CHIP.findall(page)}


def test_each_chosen_filter_has_a_chip_that_removes_only_it_and_keeps_the_sort(client, catalog):
    params = {
        "brand": ["kestrel", "yarrow"], "o_colour": "Black", "o_eu-size": "40", "price_min": "45",
        "price_max": "70", "in_stock": "on", "sort": "price_desc", "per_page": "12", "page": "1",
    }  # fmt: skip
    page = client.get("/c/shoes/", params).content.decode()
    found = chips(page)
    assert list(found) == [
        "Remove filter: Brand Kestrel",
        "Remove filter: Brand Yarrow",
        "Remove filter: Colour Black",
        "Remove filter: EU size 40",
        "Remove filter: Price €45.00 to €70.00",
        "Remove filter: Availability In stock only",
    ]
    everything = {"brand": ["kestrel", "yarrow"], "o_colour": ["Black"], "o_eu-size": ["40"], "price_min": ["45"],
                  "price_max": ["70"], "in_stock": ["on"], "sort": ["price_desc"], "per_page": ["12"]}  # fmt: skip
    assert found["Remove filter: Brand Kestrel"] == {**everything, "brand": ["yarrow"]}
    assert found["Remove filter: Colour Black"] == {k: v for k, v in everything.items() if k != "o_colour"}
    assert found["Remove filter: EU size 40"] == {k: v for k, v in everything.items() if k != "o_eu-size"}
    assert found["Remove filter: Price €45.00 to €70.00"] == {
        k: v for k, v in everything.items() if k not in ("price_min", "price_max")
    }
    assert found["Remove filter: Availability In stock only"] == {
        k: v for k, v in everything.items() if k != "in_stock"
    }
    clear = re.search(r'<a class="chip-clear" href="([^"]*)">Clear all</a>', page).group(1)
    assert parse_qs(urlsplit(unescape(clear)).query) == {"sort": ["price_desc"], "per_page": ["12"]}


def test_following_a_chip_drops_that_filter_and_the_listing_grows(client, catalog):
    both = client.get("/c/shoes/", {"brand": "kestrel", "o_eu-size": "40"}).content.decode()
    count = int(re.search(r'id="results-count"[^>]*>(\d+)', both).group(1))
    href = unescape(CHIP.search(both).group(1))
    assert "kestrel" not in href
    one = client.get("/c/shoes/" + href).content.decode()
    assert list(chips(one)) == ["Remove filter: EU size 40"]
    assert int(re.search(r'id="results-count"[^>]*>(\d+)', one).group(1)) > count


def test_a_price_bound_alone_and_a_search_keep_their_text(client, catalog):
    page = client.get("/search/", {"q": "runner", "price_max": "50"}).content.decode()
    assert chips(page) == {"Remove filter: Price up to €50.00": {"q": ["runner"]}}
    assert 'class="chip-clear" href="?q=runner"' in page


def test_no_filter_no_chips(client, catalog):
    page = client.get("/c/shoes/").content.decode()
    assert "chip-remove" not in page
    assert "Clear all" not in page
    assert "Filters</summary>" in page


def test_long_facets_show_the_chosen_values_and_keep_the_rest_behind_show_more(client, catalog):
    page = client.get("/c/shoes/", {"o_colour": "Teal"}).content.decode()
    colour = page[page.index("<legend>Colour</legend>") : page.index("</fieldset>", page.index("<legend>Colour"))]
    shown, more = colour.split('<details class="facet-more">')
    assert 'value="Teal" checked' in shown, "a chosen value is never hidden"
    assert "Show 3 more" in more
    assert "Rust" in more
    assert "White" in more
    assert shown.count('type="checkbox"') == 8 + 1
    assert 'Filters <span class="filters-count">(1)</span>' in page


def test_the_category_bar_lists_every_top_category_in_a_menu_too_without_extra_queries(client, catalog):
    client.get("/c/shoes/")  # the category tree is cached
    with CaptureQueriesContext(connection) as before:
        page = client.get("/c/shoes/").content.decode()
    menu = page[page.index('<details class="category-menu"') : page.index("</details>", page.index("category-menu"))]
    assert "<summary>" in menu
    assert "Menu" in menu
    assert re.findall(r'href="/c/([\w-]+)/"', menu) == ["bags", "shoes"]
    assert not any("shop_infopage" in q["sql"] for q in before.captured_queries), "the footer costs no query"


# ---------------------------------------------------------------- info pages

MIGRATION = importlib.import_module("shop.migrations.0003_info_pages")
REQUIRED = ["contact", "delivery", "privacy", "returns", "terms"]


def create_pages() -> None:
    """Run the data migration's function as migrate runs it on the shop's database (tests with transaction=True
    flush the tables the migrations filled)."""
    from kernel.db import db_for_module

    MIGRATION.create_info_pages(apps, SimpleNamespace(connection=connections[db_for_module("shop")]))


def test_the_migration_creates_the_five_pages_once_and_keeps_staff_edits(client):
    InfoPage.objects.all().delete()
    create_pages()
    assert sorted(InfoPage.objects.values_list("slug", flat=True)) == REQUIRED
    InfoPage.objects.filter(slug="terms").update(content="<p>Our own terms.</p>")
    InfoPage.objects.filter(slug="privacy").delete()
    create_pages()
    assert sorted(InfoPage.objects.values_list("slug", flat=True)) == REQUIRED
    assert InfoPage.objects.get(slug="terms").content == "<p>Our own terms.</p>"


def test_demo_setup_does_not_duplicate_the_pages(settings):
    settings.DEBUG = True
    create_pages()
    call_command("demo_setup", products=0, stdout=StringIO())
    assert sorted(InfoPage.objects.values_list("slug", flat=True)) == REQUIRED


def test_info_pages_say_what_the_shop_does_from_its_settings(client, settings):
    settings.SHOP_NAME = "Acme Outfitters"
    settings.SHOP_CONTACT_EMAIL = "help@acme.example"
    settings.SHOP_FREE_SHIPPING_ABOVE = "60.00"
    settings.ORDERS_RETURN_DAYS = 14
    create_pages()
    delivery = client.get("/pages/delivery/").content.decode()
    assert "<h1>Delivery</h1>" in delivery
    assert re.search(r"Standard delivery</th><td>3-5 working days</td><td>€4.90, free on orders from €60.00", delivery)
    assert "Express delivery</th><td>next working day</td><td>€9.90<" in delivery
    assert "Prices include VAT (20 %)" in delivery
    assert 'href="mailto:help@acme.example"' in delivery
    assert "<title>Delivery · Acme Outfitters</title>" in delivery
    returns = client.get("/pages/returns/").content.decode()
    assert "within 14 days of delivery" in returns
    assert "Acme Outfitters" in client.get("/pages/terms/").content.decode()
    settings.SHOP_PRICES_INCLUDE_TAX = False
    assert "Prices exclude VAT" in client.get("/pages/delivery/").content.decode()


def test_the_contact_address_defaults_to_the_shops_sender(client, settings):
    settings.SHOP_CONTACT_EMAIL = ""
    settings.DEFAULT_FROM_EMAIL = "Northwind Goods <orders@northwind.example>"
    create_pages()
    assert 'href="mailto:orders@northwind.example"' in client.get("/pages/contact/").content.decode()


def test_unpublished_or_unknown_pages_are_not_found(client):
    create_pages()
    InfoPage.objects.filter(slug="terms").update(is_published=False)
    assert client.get("/pages/terms/").status_code == 404
    assert client.get("/pages/no-such-page/").status_code == 404
    assert client.get("/pages/delivery/").status_code == 200
    assert client.post("/pages/delivery/").status_code == 405


def test_footer_links_every_info_page_the_sitemap_and_the_api(client):
    create_pages()
    page = client.get("/pages/contact/").content.decode()
    footer = page[page.index('<footer class="site-footer">') :]
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', footer) == [
        ("/pages/delivery/", "Delivery"),
        ("/pages/returns/", "Returns"),
        ("/pages/terms/", "Terms"),
        ("/pages/privacy/", "Privacy"),
        ("/pages/contact/", "Contact"),
        ("/sitemap.xml", "Sitemap"),
        ("/api/v1/docs/", "API for integrators"),
    ]
    for href in re.findall(r'href="(/pages/[^"]+)"', footer):
        assert client.get(href).status_code == 200


def test_the_sitemap_lists_the_published_info_pages(client):
    create_pages()
    InfoPage.objects.filter(slug="privacy").update(is_published=False)
    assert "sitemap-pages.xml" in client.get("/sitemap.xml").content.decode()
    pages = client.get("/sitemap-pages.xml").content.decode()
    assert re.findall(r"<loc>http://testserver/pages/([\w-]+)/</loc>", pages) == [
        "contact",
        "delivery",
        "returns",
        "terms",
    ]


def test_staff_edit_a_page_in_the_admin_told_that_its_html_is_trusted(client):
    create_pages()
    client.force_login(SuperuserFactory())
    page = InfoPage.objects.get(slug="contact")
    form = client.get(f"/admin/shop/infopage/{page.pk}/change/").content.decode()
    assert "trusted staff input" in form
    assert "{contact_email}" in form
    response = client.post(
        f"/admin/shop/infopage/{page.pk}/change/",
        {"title": "Contact us", "summary": "", "content": "<p>Call {shop_name}.</p>", "is_published": "on"},
    )
    assert response.status_code == 302
    shown = client.get("/pages/contact/").content.decode()
    assert "<h1>Contact us</h1>" in shown
    assert "<p>Call Northwind Goods.</p>" in shown
    delete = client.get(f"/admin/shop/infopage/{page.pk}/delete/")
    assert delete.status_code == 403, "the footer links to it: staff unpublish it instead"


def test_a_category_page_reads_the_category_tree_once_and_the_next_request_sees_a_change(client, monkeypatch):
    from catalog import categories

    wear = make_category("Wear")
    make_category("Tops", wear)
    reads = []
    read = categories._category_tree
    monkeypatch.setattr(categories, "_category_tree", lambda: reads.append(1) or read())
    assert client.get(f"/c/{wear.slug}/").status_code == 200
    assert len(reads) == 1, "the view, the filters, the facets and the page frame share one read"
    category_update(category_id=wear.pk, name="Outerwear")
    page = client.get(f"/c/{wear.slug}/")
    assert "Outerwear" in page.content.decode()
    assert len(reads) == 2
    categories.category_tree()  # outside a request: read every time, nothing kept
    categories.category_tree()
    assert len(reads) == 4


def test_a_facet_value_with_markup_is_shown_as_text_and_sent_back_as_it_was(client):
    wear = make_category("Wear")
    make_product("Odd Tee", wear, variants=[{"options": {"Colour": '<script>alert("x")</script>'}, "price": "9.00",
                                             "stock": 2}])  # fmt: skip
    html = client.get(f"/c/{wear.slug}/").content.decode()
    assert "<script>alert" not in html
    assert 'value="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in html
    chosen = client.get(f"/c/{wear.slug}/", {"o_colour": '<script>alert("x")</script>'})
    assert "1 product" in chosen.content.decode()
    assert "<script>alert" not in chosen.content.decode()
