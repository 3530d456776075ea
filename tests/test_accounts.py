from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from accounts.services import EmailTaken, UserNotFound, user_get, user_register
from kernel import bus
from tests import outbox
from tests.factories import DEFAULT_PASSWORD, SuperuserFactory, UserFactory

pytestmark = [pytest.mark.modules, pytest.mark.django_db]
User = get_user_model()


def test_email_is_the_login_whatever_its_case(client):
    UserFactory(email="ada@example.com")
    assert client.login(email="ADA@Example.com", password=DEFAULT_PASSWORD)
    assert not client.login(email="ada@example.com", password="wrong password")


def test_one_account_per_mailbox():
    User.objects.create_user(email="grace@example.com", password=DEFAULT_PASSWORD)
    with pytest.raises((ValidationError, IntegrityError)):
        User.objects.create_user(email="Grace@Example.COM", password=DEFAULT_PASSWORD)


def test_the_user_model_has_no_username():
    assert User.USERNAME_FIELD == "email"
    assert not any(f.name == "username" for f in User._meta.get_fields())


def test_register_creates_the_account_and_welcomes_the_customer_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        info = user_register(email=" Linus@Example.com ", password="a-long-enough-passphrase", full_name="Linus")
    assert info.email == "linus@example.com"
    assert not info.is_staff
    assert user_get(user_id=info.id) == info
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["linus@example.com"]
    assert "Welcome to" in mail.outbox[0].subject

    event_id = outbox.events("accounts.user.registered.v1")[0]["id"]
    bus.handle(event_id, "accounts.send_welcome_email", using=outbox.alias_of(event_id))  # delivered a second time
    assert len(mail.outbox) == 1, "the welcome email is not sent twice"


def test_register_refuses_a_taken_email_and_a_weak_password():
    user_register(email="alan@example.com", password="a-long-enough-passphrase")
    with pytest.raises(EmailTaken):
        user_register(email="ALAN@example.com", password="another-long-passphrase")
    with pytest.raises(ValidationError):
        user_register(email="weak@example.com", password="123")
    assert not User.objects.filter(email="weak@example.com").exists()


def test_user_get_unknown_id():
    with pytest.raises(UserNotFound):
        user_get(user_id=999_999)


def test_admin_lists_users_for_staff(client):
    admin = SuperuserFactory(email="boss@example.com")
    UserFactory(email="someone@example.com")
    client.force_login(admin)
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 200
    assert "someone@example.com" in response.content.decode()


def test_admin_is_closed_to_customers(client):
    client.force_login(UserFactory())
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_demo_setup_prints_working_credentials_and_does_not_duplicate(client, settings, capsys):
    settings.DEBUG = True
    call_command("demo_setup", products=12, orders=30, customers=5)
    call_command("demo_setup", products=12, orders=30, customers=5)
    out = capsys.readouterr().out
    assert "Demo catalog: 0 products added, 12 already there." in out
    password = out.strip().splitlines()[-1].split("password:")[1].strip()
    assert User.objects.filter(email="admin@example.com").count() == 1
    assert client.login(email="admin@example.com", password=password), "the last printed password works"
    assert client.get("/admin/").status_code == 200


def test_demo_setup_refuses_to_run_on_a_production_shop(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("demo_setup")
