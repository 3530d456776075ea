"""Domain events: facts in the past tense, frozen dataclasses of primitives with a versioned name.

    @dataclass(frozen=True, kw_only=True)
    class OrderPlaced(DomainEvent):
        name: ClassVar[str] = "orders.order.placed.v1"
        order_id: int
        total: Decimal

Field types allowed: str, int, float, bool, Decimal, UUID, datetime, date, None unions of them and tuples of them.
An event crosses the outbox as JSON and comes back as the same dataclass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import types
import typing
import uuid
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from django.utils import timezone

NAME_PATTERN = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[1-9][0-9]*$")

_registry: dict[str, type[DomainEvent]] = {}

E = TypeVar("E", bound="DomainEvent")


class UnknownEvent(LookupError):
    """No event class is registered under this name."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DomainEvent:
    name: ClassVar[str]
    event_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    occurred_at: dt.datetime = dataclasses.field(default_factory=timezone.now)

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise TypeError(f"{cls.__qualname__}.name must look like 'module.thing.happened.v1', got {name!r}")
        if not name.startswith(cls.__module__.split(".")[0] + "."):
            raise TypeError(f"{cls.__qualname__}.name {name!r} must start with its module's name")
        existing = _registry.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"event name {name!r} is taken by {existing.__module__}.{existing.__qualname__}")
        _registry[name] = cls

    @property
    def module(self) -> str:
        return self.name.split(".", 1)[0]

    def to_payload(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_payload(cls: type[E], payload: dict[str, Any]) -> E:
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in payload:
                values[f.name] = _decode(payload[f.name], hints[f.name])
        return cls(**values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Command(DomainEvent, abstract=True):
    """A request that one module do something, named in the imperative ("catalog.reservation.commit.v1").

    It travels the outbox like an event, so it exists if and only if the requesting change committed, but it has
    exactly one handler: the module that owns it (kernel.bus refuses a second). The owner answers with events of
    its own ("catalog.reservation.failed.v1") when the outcome matters to the requester.
    """


def event_class(name: str) -> type[DomainEvent]:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownEvent(name) from None


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"events carry primitives only; got {type(value).__name__}")


def _decode(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(value, options[0]) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_decode(v, item) for v in value)
    if hint is Decimal:
        return Decimal(value)
    if hint is uuid.UUID:
        return uuid.UUID(value)
    if hint is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if hint is dt.date:
        return dt.date.fromisoformat(value)
    return value
