"""Reading the outbox in tests: the events published, once each, oldest first."""

from __future__ import annotations

from typing import Any

from kernel.models import Delivery


def events(name: str | None = None, *, using: str = "default") -> list[dict[str, Any]]:
    rows = Delivery.objects.using(using).order_by("created_at", "id")
    if name:
        rows = rows.filter(event_name=name)
    seen: dict[Any, dict[str, Any]] = {}
    for event_id, event_name, payload in rows.values_list("event_id", "event_name", "payload"):
        seen.setdefault(event_id, {"id": event_id, "name": event_name, "payload": payload})
    return list(seen.values())


def names(*, using: str = "default") -> list[str]:
    return [event["name"] for event in events(using=using)]


def undelivered(*, using: str = "default") -> list[tuple[str, str]]:
    return list(
        Delivery.objects.using(using).exclude(status=Delivery.Status.DONE).values_list("event_name", "consumer")
    )
