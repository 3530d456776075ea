"""Public face of accounts: functions other modules may call. Plain values in, frozen dataclasses out."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from accounts.events import UserDeleted, UserRegistered
from accounts.keys import (
    API_SCOPES,
    ApiKeyError,
    ApiKeyInfo,
    ApiKeyInvalid,
    ApiKeyNotFound,
    UnknownScope,
    api_key_authenticate,
    api_key_create,
    api_key_get,
    api_key_revoke,
    api_key_update,
    scope_granted,
)
from accounts.models import Address, User, normalize_email
from kernel.bus import publish
from kernel.db import atomic


class AccountError(Exception):
    """Base of the exceptions accounts raises."""


class EmailTaken(AccountError):
    """An account with this email address exists already."""


class UserNotFound(AccountError):
    """No user with this id."""


class AddressNotFound(AccountError):
    """No address with this id in this customer's address book."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    full_name: str
    is_staff: bool
    is_active: bool


def _info(user: User) -> UserInfo:
    return UserInfo(user.pk, user.email, user.full_name, user.is_staff, user.is_active)


def user_register(*, email: str, password: str, full_name: str = "") -> UserInfo:
    """Create a customer account and publish accounts.user.registered.v1.

    Raises EmailTaken, or django.core.exceptions.ValidationError when the password is too weak.
    """
    email = normalize_email(email)
    candidate = User(email=email, full_name=full_name)
    password_validation.validate_password(password, user=candidate)
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken(email)
    try:
        with atomic(module="accounts"):
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
            publish(UserRegistered(user_id=user.pk, email=user.email))
    except (IntegrityError, ValidationError) as exc:
        if User.objects.filter(email__iexact=email).exists():  # lost a race with a second sign-up
            raise EmailTaken(email) from exc
        raise
    return _info(user)


def user_get(*, user_id: int) -> UserInfo:
    try:
        return _info(User.objects.get(pk=user_id))
    except User.DoesNotExist:
        raise UserNotFound(user_id) from None


def staff_emails() -> tuple[str, ...]:
    """The email addresses of active staff accounts, for the shop's own notices (an integrator's webhook endpoint
    was disabled, for example). Sorted, without duplicates."""
    emails = User.objects.filter(is_staff=True, is_active=True).exclude(email="").values_list("email", flat=True)
    return tuple(sorted(set(emails)))


def demo_superuser_ensure(*, email: str) -> tuple[UserInfo, str]:
    """Create the demo shop's superuser, or reset its password. Returns it with a fresh random password.

    For `make run` only: a development shop with DEBUG on.
    """
    password = secrets.token_urlsafe(12)
    email = normalize_email(email)
    with atomic(module="accounts"):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_superuser(email=email, password=password, full_name="Demo Staff")
        else:
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save(update_fields=["is_staff", "is_superuser", "is_active", "password"])
    return _info(user), password


def demo_customer_ensure(*, email: str, full_name: str = "Demo Customer") -> tuple[UserInfo, str]:
    """Create the demo shop's known customer account (not staff), or reset its password. Returns it with a fresh
    random password. For `make run` only: a development shop with DEBUG on."""
    password = secrets.token_urlsafe(12)
    email = normalize_email(email)
    with atomic(module="accounts"):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
        else:
            user.is_active = True
            user.set_password(password)
            user.save(update_fields=["is_active", "password"])
    return _info(user), password


def demo_customers_ensure(*, customers: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Make sure a customer account exists for each (email, full name): the demo shop's past customers. They
    cannot sign in (no usable password; hashing hundreds of passwords would take minutes) and, being history, are
    not announced (no accounts.user.registered.v1, so no welcome emails). Returns {normalised email: user id} for
    all of them, existing ones included. Idempotent; two queries and one insert per 500 new accounts."""
    wanted = {normalize_email(email): name for email, name in customers}
    found = dict(User.objects.filter(email__in=list(wanted)).values_list("email", "pk"))
    missing = []
    for email, name in wanted.items():
        if email not in found:
            user = User(email=email, full_name=name)
            user.set_unusable_password()
            missing.append(user)
    if missing:
        with atomic(module="accounts"):
            User.objects.bulk_create(missing, batch_size=500)
        found.update(User.objects.filter(email__in=[u.email for u in missing]).values_list("email", "pk"))
    return found


def user_update_profile(*, user_id: int, full_name: str) -> UserInfo:
    updated = User.objects.filter(pk=user_id).update(full_name=full_name.strip()[:150], updated_at=timezone.now())
    if not updated:
        raise UserNotFound(user_id)
    return user_get(user_id=user_id)


def user_delete(*, user_id: int) -> None:
    """Erase a customer's personal data and close the account. Orders they placed are kept, anonymised by orders
    when it receives accounts.user.deleted.v1. The row stays so that nothing pointing at it breaks."""
    with atomic(module="accounts"):
        user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None:
            raise UserNotFound(user_id)
        Address.objects.filter(user_id=user_id).delete()
        user.email = f"deleted-{user_id}@deleted.invalid"
        user.full_name = ""
        user.is_active = False
        user.is_staff = user.is_superuser = False
        user.set_unusable_password()
        user.save()
        user.groups.clear()
        user.user_permissions.clear()
        publish(UserDeleted(user_id=user_id))


# ---------------------------------------------------------------- address book

ADDRESS_FIELDS = ("full_name", "line1", "line2", "postal_code", "city", "region", "country", "phone")
# Countries the shop delivers to (ISO 3166 code, name), sorted by name: address book and checkout offer these.
COUNTRIES = tuple(
    sorted(
        (
            ("AT", "Austria"), ("BE", "Belgium"), ("CH", "Switzerland"), ("CZ", "Czechia"), ("DE", "Germany"),
            ("DK", "Denmark"), ("ES", "Spain"), ("FI", "Finland"), ("FR", "France"), ("GB", "United Kingdom"),
            ("IE", "Ireland"), ("IT", "Italy"), ("LU", "Luxembourg"), ("NL", "Netherlands"), ("NO", "Norway"),
            ("PL", "Poland"), ("PT", "Portugal"), ("SE", "Sweden"), ("US", "United States"),
        ),
        key=lambda country: country[1],
    )
)  # fmt: skip
_COUNTRY_NAMES = dict(COUNTRIES)


def country_name(code: str | None) -> str:
    """ "DE" -> "Germany"; a code the shop does not deliver to (an old order's) is given back as it is."""
    code = (code or "").strip()
    return _COUNTRY_NAMES.get(code.upper(), code)


def default_country() -> str:
    """The country address forms start with: SHOP_DEFAULT_COUNTRY (checked at startup, accounts.checks)."""
    return settings.SHOP_DEFAULT_COUNTRY.upper()


@dataclass(frozen=True)
class AddressInfo:
    id: int
    full_name: str
    line1: str
    line2: str
    postal_code: str
    city: str
    region: str
    country: str
    phone: str
    is_default_shipping: bool
    is_default_billing: bool

    @property
    def lines(self) -> tuple[str, ...]:
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        parts = (self.full_name, self.line1, self.line2, city, self.region, country_name(self.country))
        return tuple(p for p in parts if p)

    def same_place(self, fields: Mapping[str, str]) -> bool:
        """The same address as these fields (case and spaces aside): saving them again would duplicate it."""
        return all(_comparable(getattr(self, name)) == _comparable(fields.get(name)) for name in ADDRESS_FIELDS)


def _address_info(a: Address) -> AddressInfo:
    return AddressInfo(a.pk, *(getattr(a, f) for f in ADDRESS_FIELDS), a.is_default_shipping, a.is_default_billing)


def address_list(*, user_id: int) -> tuple[AddressInfo, ...]:
    return tuple(_address_info(a) for a in Address.objects.filter(user_id=user_id))


def address_get(*, user_id: int, address_id: int) -> AddressInfo:
    """Raises AddressNotFound when the address does not exist or belongs to someone else."""
    address = Address.objects.filter(user_id=user_id, pk=address_id).first()
    if address is None:
        raise AddressNotFound(address_id)
    return _address_info(address)


def address_save(*, user_id: int, address_id: int | None = None, **fields: str) -> AddressInfo:
    """Create an address (address_id None) or change one of this customer's. The first address becomes the
    default for shipping and billing. Raises AddressNotFound, or ValidationError for bad values."""
    unknown = set(fields) - set(ADDRESS_FIELDS)
    if unknown:
        raise ValueError(f"unknown address fields: {sorted(unknown)}")
    with atomic(module="accounts"):
        if address_id is None:
            first = not Address.objects.filter(user_id=user_id).exists()
            address = Address(user_id=user_id, is_default_shipping=first, is_default_billing=first)
        else:
            address = Address.objects.select_for_update().filter(user_id=user_id, pk=address_id).first()
            if address is None:
                raise AddressNotFound(address_id)
        for name, value in fields.items():
            setattr(address, name, (value or "").strip())
        address.country = address.country.upper()
        address.full_clean(exclude=["user"])
        address.save()
        _touch(user_id)
    return _address_info(address)


def _comparable(value: str | None) -> str:
    return " ".join((value or "").split()).casefold()


def address_remember(*, user_id: int, **fields: str) -> AddressInfo:
    """Keep an address the customer used (at checkout) in their address book, once: an address already there with
    the same fields (case and spaces aside) is given back instead of a second copy. The first address becomes the
    default. Raises ValueError for unknown fields, ValidationError for bad values."""
    with atomic(module="accounts"):
        User.objects.select_for_update().filter(pk=user_id).first()  # one at a time per customer: no twin copies
        existing = next((a for a in address_list(user_id=user_id) if a.same_place(fields)), None)
        if existing is not None:
            return existing
        return address_save(user_id=user_id, **fields)


def _touch(user_id: int) -> None:
    """The customer's API representation (with the address book) changed: updated_at, for `updated_since`."""
    User.objects.filter(pk=user_id).update(updated_at=timezone.now())


def address_delete(*, user_id: int, address_id: int) -> None:
    with atomic(module="accounts"):
        deleted, _ = Address.objects.filter(user_id=user_id, pk=address_id).delete()
        if not deleted:
            raise AddressNotFound(address_id)
        _touch(user_id)


def address_set_default(*, user_id: int, address_id: int, shipping: bool = False, billing: bool = False) -> None:
    """Make one of this customer's addresses the default for shipping and/or billing."""
    with atomic(module="accounts"):
        address = Address.objects.select_for_update().filter(user_id=user_id, pk=address_id).first()
        if address is None:
            raise AddressNotFound(address_id)
        if shipping:
            Address.objects.filter(user_id=user_id, is_default_shipping=True).update(is_default_shipping=False)
            address.is_default_shipping = True
        if billing:
            Address.objects.filter(user_id=user_id, is_default_billing=True).update(is_default_billing=False)
            address.is_default_billing = True
        address.save(update_fields=["is_default_shipping", "is_default_billing"])
        _touch(user_id)


__all__ = [
    "ADDRESS_FIELDS",
    "API_SCOPES",
    "COUNTRIES",
    "AccountError",
    "AddressInfo",
    "AddressNotFound",
    "ApiKeyError",
    "ApiKeyInfo",
    "ApiKeyInvalid",
    "ApiKeyNotFound",
    "EmailTaken",
    "UnknownScope",
    "UserInfo",
    "UserNotFound",
    "address_delete",
    "address_get",
    "address_list",
    "address_remember",
    "address_save",
    "address_set_default",
    "api_key_authenticate",
    "api_key_create",
    "api_key_get",
    "api_key_revoke",
    "api_key_update",
    "country_name",
    "default_country",
    "demo_customer_ensure",
    "demo_customers_ensure",
    "demo_superuser_ensure",
    "scope_granted",
    "staff_emails",
    "user_delete",
    "user_get",
    "user_register",
    "user_update_profile",
]
