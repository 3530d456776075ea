"""Issue 15: the cart's totals, and the checkout's forms: countries and the default country, what a signed-in
customer finds prefilled, the address kept in the address book, the billing address, the summary that follows the
delivery method, country names, and messages (never a 500) for whatever is posted."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from accounts import services as accounts
from accounts.models import Address
from orders import services as orders
from orders.models import Order
from tests.factories import SuperuserFactory, UserFactory, make_category, make_product

pytestmark = [pytest.mark.modules, pytest.mark.django_db]

NEW = {"saved_address": "new", "full_name": "Gus Guest", "line1": "1 Market St", "postal_code": "10115",
       "city": "Berlin", "country": "DE"}  # fmt: skip
DETAILS = {"email": "guest@example.com", **NEW, "shipping_method": "standard", "billing_asked": "1",
           "billing_same": "on", "save_address": "on"}  # fmt: skip
BILLING = {"billing_full_name": "Acme GmbH", "billing_line1": "9 Invoice Way", "billing_postal_code": "1010",
           "billing_city": "Vienna", "billing_country": "AT"}  # fmt: skip


@pytest.fixture
def lamp():
    variants = [{"options": {"Colour": "Brass"}, "price": "37.60", "stock": 9}]
    return make_product("Brass Lamp", make_category("Lighting"), variants=variants).variants.get()


@pytest.fixture
def customer():
    user = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    client = Client()
    client.force_login(user)
    return user, client


def in_cart(client, variant, quantity: int = 1):
    client.post("/cart/add", {"variant": variant.pk, "quantity": str(quantity)})
    return client


def text(response) -> str:
    """The page's text without tags, spaces squeezed: what a shopper reads."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def place(client, data=None) -> Order:
    """Details -> review -> place; returns the order."""
    response = client.post("/checkout/", data or DETAILS)
    assert response.status_code == 302, text(response)
    review = client.get("/checkout/review/")
    token = re.search(r'name="token" value="([^"]+)"', review.content.decode()).group(1)
    assert client.post("/checkout/place/", {"token": token}).status_code == 302
    return Order.objects.get()


# ---------------------------------------------------------------- 1. the cart's totals


def test_cart_says_prices_include_vat_and_how_much_more_for_free_delivery(client, lamp):
    page = text(in_cart(client, lamp).get("/cart/"))
    assert "worked out at checkout" not in page
    assert "Delivery from €4.90" in page, "standard is the cheapest; express costs more"
    assert "Total €42.50" in page, "37.60 and standard delivery"
    assert "Prices include VAT: the total includes €7.08 VAT." in page, "42.50 - 42.50 / 1.2"
    assert "Add €12.40 more for free standard delivery." in page


def test_cart_says_free_delivery_once_the_threshold_is_reached(client, lamp):
    page = text(in_cart(client, lamp, 2).get("/cart/"))
    assert "Delivery Free" in page
    assert "Total €75.20" in page
    assert "Free delivery: your order ships free by standard delivery." in page
    assert "more for free standard delivery" not in page


def test_the_cart_takes_the_threshold_and_the_tax_from_orders(client, lamp, settings):
    settings.SHOP_FREE_SHIPPING_ABOVE = "100.00"
    settings.SHOP_PRICES_INCLUDE_TAX = False
    page = text(in_cart(client, lamp).get("/cart/"))
    assert "Add €62.40 more for free standard delivery." in page
    assert "VAT €8.50" in page, "20 % on 42.50"
    assert "Total €51.00" in page
    totals = orders.order_totals(subtotal=Decimal("37.60"))
    assert (totals.tax, totals.total, totals.shipping.missing_for_free) == (
        Decimal("8.50"), Decimal("51.00"), Decimal("62.40"))  # fmt: skip


# ---------------------------------------------------------------- 2. countries and the default country


def options(page: str, name: str) -> list[tuple[str, str, bool]]:
    select = re.search(rf'<select name="{name}".*?</select>', page, flags=re.S).group(0)
    return [(code, label, bool(sel)) for code, sel, label in
            re.findall(r'<option value="([A-Z]*)"( selected)?>([^<]*)</option>', select)]  # fmt: skip


def test_countries_are_sorted_by_name_and_start_at_the_shops_country_everywhere(customer, lamp):
    _user, client = customer
    names = [name for _, name in accounts.COUNTRIES]
    assert names == sorted(names)
    assert names[:7] == ["Austria", "Belgium", "Czechia", "Denmark", "Finland", "France", "Germany"]
    checkout = in_cart(client, lamp).get("/checkout/").content.decode()
    book = client.get("/account/addresses/new/").content.decode()
    for page, name in ((checkout, "country"), (checkout, "billing_country"), (book, "country")):
        listed = options(page, name)
        assert [label for _, label, _ in listed] == names
        assert [code for code, _, selected in listed if selected] == ["DE"], name


def test_the_default_country_is_one_setting(customer, lamp, settings):
    settings.SHOP_DEFAULT_COUNTRY = "at"
    _user, client = customer
    checkout = in_cart(client, lamp).get("/checkout/").content.decode()
    book = client.get("/account/addresses/new/").content.decode()
    assert [c for c, _, selected in options(checkout, "country") if selected] == ["AT"]
    assert [c for c, _, selected in options(book, "country") if selected] == ["AT"]
    settings.SHOP_DEFAULT_COUNTRY = "XX"
    with pytest.raises(SystemCheckError, match="SHOP_DEFAULT_COUNTRY"):
        call_command("check")


def test_a_berlin_address_added_to_the_address_book_is_saved_as_germany(customer):
    """The form used to start at the list's first country (Austria): a shopper who did not look saved a Berlin
    address as AT. The browser sends the country the form shows, so the form must show the shop's own."""
    user, client = customer
    form = client.get("/account/addresses/new/").content.decode()
    shown = next(code for code, _, selected in options(form, "country") if selected)
    posted = {"full_name": "Ada Lovelace", "line1": "Unter den Linden 1", "postal_code": "10117", "city": "Berlin",
              "country": shown}  # fmt: skip
    assert client.post("/account/addresses/new/", posted).status_code == 302
    assert Address.objects.get(user=user).country == "DE"
    assert "Germany" in text(client.get("/account/addresses/")), "the address book names the country"


# ---------------------------------------------------------------- 3. prefilled details, the address book


def test_a_signed_in_customer_finds_email_name_and_default_address_chosen(customer, lamp):
    user, client = customer
    older = accounts.address_save(user_id=user.pk, full_name="Ada L", line1="1 Old Rd", postal_code="1010",
                                  city="Vienna", country="AT")  # fmt: skip
    newer = accounts.address_save(user_id=user.pk, full_name="Ada L", line1="2 New Rd", postal_code="10115",
                                  city="Berlin", country="DE")  # fmt: skip
    accounts.address_set_default(user_id=user.pk, address_id=newer.id, shipping=True)
    page = in_cart(client, lamp).get("/checkout/").content.decode()
    assert 'value="ada@example.com"' in page
    assert re.search(r'name="full_name" value="Ada Lovelace"', page)
    assert re.search(rf'value="{newer.id}"[^>]*checked', page), "the default delivery address is chosen"
    assert not re.search(rf'value="{older.id}"[^>]*checked', page)
    assert "2 New Rd, 10115 Berlin, Germany" in text(client.get("/checkout/"))
    assert "Save this address to my address book" in page
    guest = text(in_cart(Client(), lamp).get("/checkout/"))
    assert "Save this address to my address book" not in guest, "a guest has no address book"


def test_the_new_address_is_saved_once_after_the_order_is_placed(customer, lamp, django_capture_on_commit_callbacks):
    user, client = customer
    in_cart(client, lamp)
    order = place(client, {**DETAILS, "email": user.email})
    assert order.user_id == user.pk
    (saved,) = accounts.address_list(user_id=user.pk)
    assert (saved.full_name, saved.line1, saved.city, saved.country) == ("Gus Guest", "1 Market St", "Berlin", "DE")
    assert saved.is_default_shipping, "the first address becomes the default"

    Order.objects.all().delete()
    client.post("/checkout/", {**DETAILS, "full_name": "gus  guest", "email": user.email})  # the same, typed again
    again = text(client.get("/checkout/review/"))
    assert "gus guest" in again.lower()
    token = re.search(r'name="token" value="([^"]+)"', client.get("/checkout/review/").content.decode()).group(1)
    client.post("/checkout/place/", {"token": token})
    assert len(accounts.address_list(user_id=user.pk)) == 1, "an identical address is not saved twice"


def test_no_address_is_saved_when_the_box_is_unticked_or_a_saved_one_is_used(customer, lamp):
    user, client = customer
    in_cart(client, lamp)
    place(client, {k: v for k, v in DETAILS.items() if k != "save_address"})
    assert accounts.address_list(user_id=user.pk) == ()


def test_failing_to_save_the_address_does_not_fail_the_order(customer, lamp, monkeypatch, caplog):
    from shop import services

    def broken(**kwargs):
        raise RuntimeError("accounts database is down")

    monkeypatch.setattr(services, "address_remember", broken)
    user, client = customer
    in_cart(client, lamp)
    order = place(client)
    assert order.status == "pending_payment"
    assert "saving the address of customer" in caplog.text
    assert accounts.address_list(user_id=user.pk) == ()


def test_address_remember_gives_back_the_same_address(customer):
    user, _ = customer
    fields = {"full_name": "Ada", "line1": "1 Market St", "postal_code": "10115", "city": "Berlin", "country": "DE"}
    first = accounts.address_remember(user_id=user.pk, **fields)
    second = accounts.address_remember(user_id=user.pk, **{**fields, "city": " berlin "})
    other = accounts.address_remember(user_id=user.pk, **{**fields, "line1": "2 Market St"})
    assert first.id == second.id != other.id
    assert len(accounts.address_list(user_id=user.pk)) == 2


# ---------------------------------------------------------------- 4. the billing address


def test_billing_fields_are_asked_for_only_when_the_box_is_unticked(client, lamp):
    in_cart(client, lamp)
    page = client.get("/checkout/").content.decode()
    assert re.search(r'name="billing_same"[^>]*checked', page), "same as delivery, by default"
    assert 'name="billing_line1"' in page, "rendered for browsers without JS"
    unticked = {k: v for k, v in DETAILS.items() if k != "billing_same"}
    response = client.post("/checkout/", unticked)
    assert response.status_code == 200
    page = text(response)
    for message in ("Enter the name the invoice is made out to.", "Enter the billing street and house number.",
                    "Enter the billing postcode.", "Enter the billing town or city."):  # fmt: skip
        assert message in page
    assert client.post("/checkout/", {**DETAILS, "billing_full_name": ""})["Location"] == "/checkout/review/"
    older_client = {k: v for k, v in unticked.items() if k != "billing_asked"}  # a post that never showed the box
    assert client.post("/checkout/", older_client)["Location"] == "/checkout/review/"
    assert "Same as the delivery address" in text(client.get("/checkout/review/"))


def test_a_different_billing_address_is_kept_on_the_order_and_shown(client, lamp):
    in_cart(client, lamp)
    data = {**{k: v for k, v in DETAILS.items() if k != "billing_same"}, **BILLING}
    client.post("/checkout/", data)
    review = text(client.get("/checkout/review/"))
    assert "Billing address Acme GmbH 9 Invoice Way 1010 Vienna Austria" in review
    order = place(client, data)
    assert order.billing_address == {"full_name": "Acme GmbH", "line1": "9 Invoice Way", "line2": "",
                                     "postal_code": "1010", "city": "Vienna", "region": "", "country": "AT",
                                     "phone": ""}  # fmt: skip
    assert order.shipping_address["city"] == "Berlin"
    detail = text(client.get(f"/orders/{order.number}/?t={order.access_token}"))
    assert "Delivery address Gus Guest 1 Market St 10115 Berlin Germany" in detail
    assert "Billing address Acme GmbH 9 Invoice Way 1010 Vienna Austria" in detail


def test_the_billing_address_is_the_delivery_address_by_default(client, lamp):
    in_cart(client, lamp)
    client.post("/checkout/", {**DETAILS, **BILLING})  # typed, then ticked again: not used
    assert "Same as the delivery address" in text(client.get("/checkout/review/"))
    order = place(client, {**DETAILS, **BILLING})
    assert order.billing_address == order.shipping_address
    assert "Same as the delivery address" in text(client.get(f"/orders/{order.number}/?t={order.access_token}"))
    placed = orders.order_place(idempotency_key="svc", lines=[(lamp.pk, 1)], shipping_method="standard",
                                shipping_address={"city": "Berlin", "country": "DE"},
                                email="a@example.com")  # fmt: skip
    assert placed.billing_address == {"city": "Berlin", "country": "DE"}


def test_the_billing_address_is_in_the_admin_and_the_api(client, lamp):
    from tests.api import key_client

    in_cart(client, lamp)
    order = place(client, {**{k: v for k, v in DETAILS.items() if k != "billing_same"}, **BILLING})
    body = key_client("orders:read").get(f"/api/v1/orders/{order.number}/").json()
    assert body["billing_address"] == {"full_name": "Acme GmbH", "line1": "9 Invoice Way", "line2": "",
                                       "postal_code": "1010", "city": "Vienna", "region": "", "country": "AT",
                                       "phone": ""}  # fmt: skip
    assert body["shipping_address"]["city"] == "Berlin"
    staff = Client()
    staff.force_login(SuperuserFactory(email="boss@example.com"))
    admin = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "Billing address" in admin
    assert "9 Invoice Way" in admin


def test_deleting_the_account_anonymises_the_billing_address_too(customer, lamp):
    user, client = customer
    in_cart(client, lamp)
    order = place(client, {**{k: v for k, v in DETAILS.items() if k != "billing_same"}, **BILLING})
    orders.orders_anonymise_customer(user_id=user.pk)
    order.refresh_from_db()
    assert order.billing_address == {"city": "Vienna", "country": "AT"}


# ---------------------------------------------------------------- 5. the summary and the headings


def test_each_delivery_method_carries_the_summarys_figures_and_the_review_shows_the_chosen_one(client, lamp):
    in_cart(client, lamp)
    page = client.get("/checkout/").content.decode()
    express = re.search(r'<input[^>]*value="express"[^>]*>', page).group(0)
    assert 'data-total="€47.50"' in express, "37.60 + 9.90"
    assert 'data-shipping="€9.90"' in express
    assert 'data-tax="€7.92"' in express
    assert 'data-method="Express delivery"' in express
    assert 'data-total="€42.50"' in re.search(r'<input[^>]*value="standard"[^>]*>', page).group(0)
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert "Delivery address" in headings
    assert "Delivery method" in headings
    assert "Delivery" not in headings
    client.post("/checkout/", {**DETAILS, "shipping_method": "express"})
    review = text(client.get("/checkout/review/"))
    assert "Delivery (Express delivery) €9.90" in review
    assert "Total €47.50" in review
    assert "Place order and pay €47.50" in review
    assert "Delivery method Express delivery (next working day): €9.90" in review


def test_an_invalid_post_keeps_the_chosen_methods_figures(client, lamp):
    in_cart(client, lamp)
    page = text(client.post("/checkout/", {**DETAILS, "shipping_method": "express", "city": ""}))
    assert "Total €47.50" in page


# ---------------------------------------------------------------- 6. country names


def test_the_review_and_order_pages_name_the_country(client, lamp):
    in_cart(client, lamp)
    client.post("/checkout/", DETAILS)
    review = client.get("/checkout/review/").content.decode()
    assert "Germany" in review
    assert ">DE<" not in review
    assert "<br>DE" not in review
    order = place(client)
    assert "Germany" in text(client.get(f"/orders/{order.number}/?t={order.access_token}"))


def test_the_address_filters_for_pages_and_emails():
    from django.template import Context, Template

    address = {"full_name": "Gus", "line1": "1 Market St", "line2": "", "postal_code": "10115", "city": "Berlin",
               "region": "", "country": "DE", "phone": "+49 30"}  # fmt: skip
    rendered = Template(
        "{{ a.country|country_name }}|{{ 'xx'|country_name }}|{% for line in a|address_lines %}{{ line }};{% endfor %}"
    ).render(Context({"a": address}))
    assert rendered == "Germany|xx|Gus;1 Market St;10115 Berlin;Germany;"
    assert Template("{% for l in a|address_lines %}{{ l }}{% endfor %}").render(Context({"a": {}})) == ""


# ---------------------------------------------------------------- 7. messages, never a 500


@pytest.mark.parametrize(
    ("junk", "message"),
    [
        ({"country": "XX"}, "Choose one of the countries we deliver to."),
        ({"country": ""}, "Choose the country."),
        ({"billing_same": "", **BILLING, "billing_country": "ZZ"}, "Choose one of the countries we deliver to."),
        ({"billing_same": "", **BILLING, "billing_country": ""}, "Choose the billing country."),
        ({"shipping_method": ["express", "teleport"]}, "Choose one of the delivery methods shown."),
        ({"shipping_method": ""}, "Choose how your order is delivered."),
        ({"email": ""}, "Enter your email address: the confirmation goes there."),
        ({"postal_code": "1" * 500}, "Use at most 20 characters."),
        ({"full_name": "   "}, "Enter the full name of the person the parcel is for."),
        ({"line1": "\x00"}, "Null characters are not allowed."),
    ],
)
def test_junk_posted_to_the_details_page_is_explained_next_to_the_field(client, lamp, junk, message):
    in_cart(client, lamp)
    response = client.post("/checkout/", {**DETAILS, **junk})
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert re.search(r'class="field-errors"[^>]*><li>' + re.escape(message), page), "next to its field"
    assert "Please check the fields marked below." in page


def test_a_tampered_address_choice_is_explained_to_a_customer_and_ignored_for_a_guest(customer, lamp):
    user, client = customer
    accounts.address_save(user_id=user.pk, full_name="Ada", line1="1 Rd", postal_code="1", city="Rome", country="IT")
    in_cart(client, lamp)
    page = client.post("/checkout/", {**DETAILS, "saved_address": "../../etc"}).content.decode()
    assert re.search(r'class="field-errors"[^>]*><li>Choose one of your addresses, or a new address.', page)
    other = Address.objects.create(user=UserFactory(), full_name="Eve", line1="x", postal_code="1", city="Y",
                                   country="DE")  # fmt: skip
    page = client.post("/checkout/", {**DETAILS, "saved_address": str(other.pk)}).content.decode()
    assert "Choose one of your addresses, or a new address." in page, "nobody else's address"
    guest = in_cart(Client(), lamp)
    assert guest.post("/checkout/", {**DETAILS, "saved_address": "999"})["Location"] == "/checkout/review/"
    assert "1 Market St" in text(guest.get("/checkout/review/")), "a guest has only the new address"


def test_a_details_form_of_nothing_but_junk_keys_is_not_a_server_error(client, lamp):
    in_cart(client, lamp)
    for data in ({"billing_same": "maybe", "save_address": "x" * 1000}, {"csrfmiddlewaretoken": "x"}, {"": ""}):
        assert client.post("/checkout/", data).status_code == 200
    assert Order.objects.count() == 0
