"""Public face of accounts: functions other modules may call. Plain values in, frozen dataclasses out."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.events import UserRegistered
from accounts.models import User, normalize_email
from kernel.bus import publish


class AccountError(Exception):
    """Base of the exceptions accounts raises."""


class EmailTaken(AccountError):
    """An account with this email address exists already."""


class UserNotFound(AccountError):
    """No user with this id."""


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
        with transaction.atomic():
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


def demo_superuser_ensure(*, email: str) -> tuple[UserInfo, str]:
    """Create the demo shop's superuser, or reset its password. Returns it with a fresh random password.

    For `make run` only: a development shop with DEBUG on.
    """
    password = secrets.token_urlsafe(12)
    email = normalize_email(email)
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_superuser(email=email, password=password, full_name="Demo Staff")
        else:
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save(update_fields=["is_staff", "is_superuser", "is_active", "password"])
    return _info(user), password


__all__ = [
    "AccountError",
    "EmailTaken",
    "UserInfo",
    "UserNotFound",
    "demo_superuser_ensure",
    "user_get",
    "user_register",
]
