"""Domain events of accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class UserRegistered(DomainEvent):
    """A customer created an account."""

    name: ClassVar[str] = "accounts.user.registered.v1"
    user_id: int
    email: str


@dataclass(frozen=True, kw_only=True)
class UserDeleted(DomainEvent):
    """A customer deleted their account: personal data is erased; other modules anonymise what they keep."""

    name: ClassVar[str] = "accounts.user.deleted.v1"
    user_id: int
