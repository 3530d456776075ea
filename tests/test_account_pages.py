"""Customer account pages: sign up, sign in (throttled), passwords, profile, address book, deleting the account."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client

from accounts.models import Address
from tests import outbox
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
User = get_user_model()
GOOD_PASSWORD = "plum-orchard-lantern-42"
ADDRESS = {"full_name": "Ada Lovelace", "line1": "12 St James's Square", "postal_code": "SW1Y 4JH",
           "city": "London", "country": "GB"}  # fmt: skip


def test_sign_up_signs_in_and_sends_a_welcome_email(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/account/signup/",
            {"email": "New@Example.com", "full_name": "New Customer", "password1": GOOD_PASSWORD,
             "password2": GOOD_PASSWORD},
        )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert "Signed in as <strong>new@example.com</strong>" in client.get("/account/").content.decode()
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_sign_up_errors_keep_what_was_typed(client):
    UserFactory(email="taken@example.com")
    page = client.post(
        "/account/signup/",
        {"email": "TAKEN@example.com", "full_name": "Grace Hopper", "password1": "123", "password2": "123"},
    ).content.decode()
    assert "An account with this email address exists already" in page
    assert "This password is too short" in page
    assert 'value="TAKEN@example.com"' in page
    assert 'value="Grace Hopper"' in page
    assert User.objects.count() == 1


def test_sign_up_never_redirects_to_another_site(client):
    data = {"email": "a@example.com", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD,
            "next": "https://evil.example.net/"}  # fmt: skip
    assert client.post("/account/signup/", data)["Location"] == "/account/"


def sign_in(client, email, password, ip="10.0.0.1"):
    return client.post("/account/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_sign_in_is_throttled_per_account_with_a_clear_message(client):
    UserFactory(email="ada@example.com")
    for _ in range(5):
        assert "do not match an account" in sign_in(client, "ada@example.com", "wrong").content.decode()
    page = sign_in(client, "ada@example.com", DEFAULT_PASSWORD).content.decode()
    assert "Too many failed sign-in attempts" in page
    assert "wait 15 minutes" in page
    assert "_auth_user_id" not in client.session, "not even the right password gets in while throttled"
    UserFactory(email="grace@example.com")
    assert sign_in(client, "grace@example.com", DEFAULT_PASSWORD).status_code == 302, "other accounts are fine"


def test_sign_in_is_throttled_per_ip_address(client):
    UserFactory(email="ada@example.com")
    for i in range(30):
        sign_in(client, f"guess{i}@example.com", "wrong", ip="10.9.9.9")
    page = sign_in(client, "ada@example.com", DEFAULT_PASSWORD, ip="10.9.9.9").content.decode()
    assert "Too many failed sign-in attempts" in page
    assert sign_in(Client(), "ada@example.com", DEFAULT_PASSWORD, ip="10.1.1.1").status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_throttled_not_the_proxy(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(email="ada@example.com")
    for i in range(30):
        client.post("/account/login/", {"username": f"x{i}@example.com", "password": "wrong"},
                    REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")  # fmt: skip
    other_visitor = Client().post("/account/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD},
                                  REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")  # fmt: skip
    assert other_visitor.status_code == 302, "another customer behind the same proxy can still sign in"


def test_password_reset_by_email(client):
    UserFactory(email="ada@example.com")
    response = client.post("/account/password/reset/", {"email": "ada@example.com"})
    assert response["Location"] == "/account/password/reset/sent/"
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    client.post(form_url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert Client().login(email="ada@example.com", password=GOOD_PASSWORD)
    assert "used already or is too old" in client.get(link, follow=True).content.decode()


def test_unknown_email_on_password_reset_reveals_nothing(client):
    response = client.post("/account/password/reset/", {"email": "nobody@example.com"})
    assert response["Location"] == "/account/password/reset/sent/"
    assert mail.outbox == []


def test_change_password_and_profile(client):
    user = UserFactory(email="ada@example.com")
    client.force_login(user)
    client.post("/account/", {"full_name": "Ada King"})
    user.refresh_from_db()
    assert user.full_name == "Ada King"
    response = client.post(
        "/account/password/change/",
        {"old_password": DEFAULT_PASSWORD, "new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD},
    )
    assert response["Location"] == "/account/password/change/done/"
    assert Client().login(email="ada@example.com", password=GOOD_PASSWORD)


def test_account_pages_need_a_signed_in_customer(client):
    for url in ("/account/", "/account/addresses/", "/account/delete/", "/account/password/change/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/account/login/?next=")


# ---------------------------------------------------------------- address book


def test_address_book_with_default_addresses(client):
    user = UserFactory()
    client.force_login(user)
    client.post("/account/addresses/new/", ADDRESS)
    client.post("/account/addresses/new/", {**ADDRESS, "line1": "1 Rue de Rivoli", "city": "Paris",
                                            "postal_code": "75001", "country": "FR"})  # fmt: skip
    first, second = Address.objects.filter(user=user).order_by("id")
    assert first.is_default_shipping
    assert first.is_default_billing
    assert not second.is_default_shipping

    client.post(f"/account/addresses/{second.pk}/default/", {"kind": "shipping"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_default_shipping
    assert not first.is_default_shipping
    assert first.is_default_billing

    client.post(f"/account/addresses/{second.pk}/", {**ADDRESS, "city": "Lyon", "country": "FR"})
    second.refresh_from_db()
    assert second.city == "Lyon"
    client.post(f"/account/addresses/{first.pk}/delete/")
    assert list(Address.objects.filter(user=user).values_list("city", flat=True)) == ["Lyon"]


def test_address_errors_keep_what_was_typed(client):
    client.force_login(UserFactory())
    page = client.post("/account/addresses/new/", {**ADDRESS, "postal_code": "", "country": "XX"}).content.decode()
    assert "This field is required." in page
    assert "Select a valid choice" in page
    assert 'value="12 St James&#x27;s Square"' in page
    assert Address.objects.count() == 0


def test_the_database_allows_one_default_shipping_address_per_customer():
    user = UserFactory()
    Address.objects.create(user=user, is_default_shipping=True, **ADDRESS)
    with pytest.raises(IntegrityError), transaction.atomic():
        Address.objects.create(user=user, is_default_shipping=True, **ADDRESS)


def test_one_customer_never_reaches_anothers_addresses(client):
    alice = UserFactory()
    address = Address.objects.create(user=alice, **ADDRESS)
    client.force_login(UserFactory())
    assert client.get(f"/account/addresses/{address.pk}/").status_code == 404
    assert client.post(f"/account/addresses/{address.pk}/", {**ADDRESS, "city": "Hacked"}).status_code == 404
    assert client.post(f"/account/addresses/{address.pk}/delete/").status_code == 404
    assert client.post(f"/account/addresses/{address.pk}/default/", {"kind": "billing"}).status_code == 404
    assert "Ada Lovelace" not in client.get("/account/addresses/").content.decode()
    address.refresh_from_db()
    assert address.city == "London"
    assert not address.is_default_billing


# ---------------------------------------------------------------- deleting the account


def test_deleting_the_account_erases_personal_data_and_signs_out(client):
    user = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    Address.objects.create(user=user, **ADDRESS)
    client.force_login(user)
    assert "That is not your password." in client.post("/account/delete/", {"password": "nope"}).content.decode()
    response = client.post("/account/delete/", {"password": DEFAULT_PASSWORD}, follow=True)
    assert "Your account is deleted" in response.content.decode()
    user.refresh_from_db()
    assert user.email == f"deleted-{user.pk}@deleted.invalid"
    assert user.full_name == ""
    assert not user.is_active
    assert not user.has_usable_password()
    assert not Address.objects.filter(user=user).exists()
    assert "_auth_user_id" not in client.session
    assert not Client().login(email="ada@example.com", password=DEFAULT_PASSWORD)
    assert [e["payload"]["user_id"] for e in outbox.events("accounts.user.deleted.v1")] == [user.pk]
