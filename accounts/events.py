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
