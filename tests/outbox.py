"""Reading the outbox in tests: the events published, once each, oldest first, from every database (with modules
on databases of their own, each module's events are in its own)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from kernel.models import Delivery


def _rows(name: str | None = None):
    for alias in settings.DATABASES:
        rows = Delivery.objects.using(alias).order_by("created_at", "id")
        if name:
            rows = rows.filter(event_name=name)
        yield from rows.values_list("created_at", "id", "event_id", "event_name", "payload", "consumer", "status")


def events(name: str | None = None) -> list[dict[str, Any]]:
    seen: dict[Any, dict[str, Any]] = {}
    for _, _, event_id, event_name, payload, _, _ in sorted(_rows(name), key=lambda row: (row[0], row[1])):
        seen.setdefault(event_id, {"id": event_id, "name": event_name, "payload": payload})
    return list(seen.values())


def names() -> list[str]:
    return [event["name"] for event in events()]


def undelivered() -> list[tuple[str, str]]:
    return [(row[3], row[5]) for row in _rows() if row[6] != Delivery.Status.DONE]


def alias_of(event_id: Any) -> str:
    """The database whose outbox holds an event."""
    for alias in settings.DATABASES:
        if Delivery.objects.using(alias).filter(event_id=event_id).exists():
            return alias
    raise LookupError(event_id)
