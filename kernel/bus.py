"""The domain-event bus, with a transactional outbox.

    publish(OrderPlaced(order_id=7, ...))      # inside the service's transaction.atomic()

publish() writes an outbox row in the same transaction as the change that caused the event, so the event exists
if and only if the change committed. After commit the event goes to its subscribers:

- inline subscribers run in the publishing process, right after commit (cache invalidation and the like);
- async subscribers run as a Celery task each (kernel.run_handler), on a worker, or in-process without a broker.

Delivery is at least once. Each (subscriber, event id) pair is recorded in ProcessedEvent in the same transaction
as the subscriber's own changes, so an event delivered twice is applied once. An event whose delivery did not
finish (broker down, process killed, handler failing) stays in the outbox and the periodic sweep
(kernel.outbox_sweep) delivers it again with growing back-off.

An event nobody subscribes to is recorded as delivered at once: a subscriber added in a later deploy receives the
events published after it, not older ones.

Subscribers are declared in a module's handlers.py, imported by its AppConfig.ready():

    @subscribe(PaymentAuthorized)            # async by default
    def mark_order_paid(event: PaymentAuthorized) -> None: ...

A subscriber that is idempotent by itself (a cache version bump, a state machine that ignores a second "paid") may
say so with idempotent=True: the bus then keeps no ProcessedEvent row for it and may run it again when an event is
re-delivered. That saves a transaction, a write and a read per event on the hottest paths. An event with such a
subscriber is marked delivered by the process that ran all of its subscribers, or by the worker that ran it once
every other subscriber has applied the event, or else by the sweep.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from kernel.db import current_module, db_for_module, insert_row, unique
from kernel.events import DomainEvent, event_class
from kernel.models import OutboxEvent, ProcessedEvent

logger = logging.getLogger(__name__)

Mode = Literal["inline", "async"]
INLINE: Mode = "inline"
ASYNC: Mode = "async"
MAX_BACKOFF_SECONDS = 60 * 60

H = TypeVar("H", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Subscription:
    key: str  # "<module>.<handler>", stable across processes and deploys
    event_name: str
    handler: Callable[[Any], None]
    mode: Mode
    idempotent: bool = False  # safe to run twice: no ProcessedEvent row is kept

    @property
    def module(self) -> str:
        return self.key.split(".", 1)[0]


_subscriptions: dict[str, dict[str, Subscription]] = defaultdict(dict)


def subscribe(
    event_type: type[DomainEvent], *, mode: Mode = ASYNC, key: str | None = None, idempotent: bool = False
) -> Callable[[H], H]:
    """Register the decorated function as a consumer of `event_type`."""
    if mode not in (INLINE, ASYNC):
        raise ValueError(f"mode must be {INLINE!r} or {ASYNC!r}")

    def decorator(handler: H) -> H:
        consumer = key or f"{handler.__module__.split('.')[0]}.{handler.__name__}"
        current = _subscriptions[event_type.name].get(consumer)
        if current is not None and current.handler.__qualname__ != handler.__qualname__:
            raise ValueError(f"consumer key {consumer!r} is already subscribed to {event_type.name}")
        _subscriptions[event_type.name][consumer] = Subscription(consumer, event_type.name, handler, mode, idempotent)
        return handler

    return decorator


def unsubscribe(event_type: type[DomainEvent], key: str) -> None:
    _subscriptions[event_type.name].pop(key, None)


def subscriptions(event_name: str) -> list[Subscription]:
    return list(_subscriptions.get(event_name, {}).values())


# ---------------------------------------------------------------- publishing


def publish(event: DomainEvent) -> None:
    """Record `event` in the outbox of its module's database; it is delivered once the transaction commits.

    Call it inside the transaction.atomic() block of the change the event reports. Outside a transaction the row
    is committed at once and delivery starts at once.
    """
    alias = db_for_module(current_module() or event.module)  # the publishing transaction's database
    now = timezone.now()
    listened = bool(_subscriptions.get(event.name))
    insert_row(
        OutboxEvent,
        using=alias,
        id=event.event_id,
        name=event.name,
        payload=event.to_payload(),
        created_at=now,
        delivered_at=None if listened else now,  # nobody listens yet: recorded, nothing to deliver
        attempts=0,
        next_attempt_at=now + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS),
        last_error="",
    )
    if listened:
        transaction.on_commit(lambda: _deliver_new(event, alias), using=alias, robust=True)


# ---------------------------------------------------------------- delivering


def deliver(event_id: uuid.UUID | str, *, using: str = "default") -> bool:
    """Hand one outbox event to every subscriber that has not applied it yet.

    Returns True once every subscriber has applied it (the row is then marked delivered). Never raises: a failure
    is written on the outbox row and the sweep tries again.
    """
    row = unique(OutboxEvent.objects.using(using).filter(pk=event_id))
    if row is None or row.delivered_at is not None:
        return True
    try:
        event = event_class(row.name).from_payload(row.payload)
    except Exception as exc:
        logger.exception("outbox event %s (%s) cannot be decoded", row.pk, row.name)
        _record_failure(row.pk, using, f"cannot decode: {type(exc).__name__}: {exc}")
        return False

    errors: list[str] = []
    enqueued = False
    for sub in _pending(subscriptions(row.name), row.pk):
        try:
            if sub.mode == INLINE:
                apply(sub, event)
            else:
                _enqueue(sub, row.pk, using)
                enqueued = True
        except Exception as exc:
            logger.exception("delivering %s %s to %s failed", row.name, row.pk, sub.key)
            errors.append(f"{sub.key}: {type(exc).__name__}: {exc}")
    if errors:
        _record_failure(row.pk, using, "; ".join(errors))
        return False
    if not enqueued:  # every consumer ran here and succeeded: no need to ask again
        _mark_delivered(row.pk, using)
        return True
    return mark_delivered_if_done(row.pk, row.name, using=using)


def _deliver_new(event: DomainEvent, using: str) -> None:
    """Delivery right after the publishing transaction committed.

    The event is still in memory and its row was written a moment ago, so nothing is read back: no subscriber can
    have applied it yet (the sweep waits OUTBOX_SWEEP_AFTER_SECONDS), and if one somehow had, apply() notices.
    """
    errors: list[str] = []
    handed_off = False
    for sub in subscriptions(event.name):
        try:
            if sub.mode == INLINE:
                apply(sub, event)
            else:
                handed_off = not _enqueue(sub, event.event_id, using) or handed_off
        except Exception as exc:
            logger.exception("delivering %s %s to %s failed", event.name, event.event_id, sub.key)
            errors.append(f"{sub.key}: {type(exc).__name__}: {exc}")
    if errors:
        _record_failure(event.event_id, using, "; ".join(errors))
    elif not handed_off:  # every consumer has run (here, or eagerly without a broker)
        if any(sub.mode == ASYNC for sub in subscriptions(event.name)):
            mark_delivered_if_done(event.event_id, event.name, using=using)
        else:
            _mark_delivered(event.event_id, using)
    # else: the worker that runs the last consumer marks the row delivered (kernel.run_handler -> handle)


def apply(sub: Subscription, event: DomainEvent) -> bool:
    """Run one subscriber on one event, at most once: False if it had already applied it.

    The claim is a single INSERT ... ON CONFLICT DO NOTHING on the unique (consumer, event) pair, in the same
    transaction as the subscriber's own changes: a concurrent second claim waits for the first to commit and then
    finds the row, or takes over if the first rolled back. Idempotent subscribers are simply run.
    """
    if sub.idempotent:
        sub.handler(event)
        return True
    alias = db_for_module(sub.module)
    with transaction.atomic(using=alias):
        if not _claim(alias, sub.key, event.event_id):
            return False
        sub.handler(event)
    return True


def _claim(alias: str, consumer: str, event_id: uuid.UUID) -> bool:
    connection = connections[alias]
    meta = ProcessedEvent._meta
    event_field, at_field = meta.get_field("event_id"), meta.get_field("processed_at")
    quote = connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(c) for c in ("consumer", "event_id", "processed_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",  # noqa: S608 (names only)
            [consumer, event_field.get_db_prep_value(event_id, connection),
             at_field.get_db_prep_value(timezone.now(), connection)],
        )  # fmt: skip
        return cursor.rowcount == 1


def handle(event_id: uuid.UUID | str, consumer: str, *, using: str = "default") -> bool:
    """Apply one outbox event to one subscriber (what the kernel.run_handler task does). True if applied now."""
    row = unique(OutboxEvent.objects.using(using).filter(pk=event_id))
    if row is None:
        logger.warning("outbox event %s is gone; nothing to hand to %s", event_id, consumer)
        return False
    sub = _subscriptions.get(row.name, {}).get(consumer)
    if sub is None:
        logger.warning("%s no longer subscribes to %s; event %s skipped", consumer, row.name, event_id)
        return False
    applied = apply(sub, event_class(row.name).from_payload(row.payload))
    # This consumer has applied it now (or had before); the event is delivered once every other one has too.
    # For an idempotent consumer that is the only sign it ran, as it keeps no record.
    if not _pending([s for s in subscriptions(row.name) if s.key != consumer], row.pk):
        _mark_delivered(row.pk, using)
    return applied


def mark_delivered_if_done(event_id: uuid.UUID, event_name: str, *, using: str) -> bool:
    if _pending(subscriptions(event_name), event_id):
        return False
    _mark_delivered(event_id, using)
    return True


def _mark_delivered(event_id: uuid.UUID, using: str) -> None:
    """One fixed UPDATE (every event passes here once): the row is marked only if it still waits."""
    connection = connections[using]
    meta, quote = OutboxEvent._meta, connection.ops.quote_name
    table, id_, delivered, error = (quote(name) for name in (meta.db_table, "id", "delivered_at", "last_error"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {delivered} = %s, {error} = '' WHERE {id_} = %s AND {delivered} IS NULL",  # noqa: S608
            [meta.get_field("delivered_at").get_db_prep_save(timezone.now(), connection),
             meta.get_field("id").get_db_prep_save(event_id, connection)],
        )  # fmt: skip


def _pending(subs: Iterable[Subscription], event_id: uuid.UUID) -> list[Subscription]:
    """Subscribers that have not applied the event. Idempotent ones keep no record, so they always count."""
    by_alias: dict[str, list[Subscription]] = defaultdict(list)
    pending: list[Subscription] = []
    for sub in subs:
        if sub.idempotent:
            pending.append(sub)
        else:
            by_alias[db_for_module(sub.module)].append(sub)
    for alias, group in by_alias.items():
        done = set(
            ProcessedEvent.objects.using(alias)
            .filter(event_id=event_id, consumer__in=[s.key for s in group])
            .values_list("consumer", flat=True)
        )
        pending.extend(s for s in group if s.key not in done)
    return pending


def _enqueue(sub: Subscription, event_id: uuid.UUID, using: str) -> bool:
    """Hand the event to a worker for one subscriber. True if it already ran here (in-process mode, no broker)."""
    from celery.result import EagerResult

    from kernel.tasks import run_handler

    result = run_handler.delay(str(event_id), sub.key, using)
    if isinstance(result, EagerResult):
        if result.failed():
            raise result.result  # in-process mode: surface the handler's error like a worker would record it
        return True
    return False


def _record_failure(event_id: uuid.UUID, using: str, error: str) -> None:
    OutboxEvent.objects.using(using).filter(pk=event_id).update(last_error=error[:4000])


# ---------------------------------------------------------------- sweeping


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.OUTBOX_SWEEP_AFTER_SECONDS * 2**attempts, MAX_BACKOFF_SECONDS))


def sweep(*, limit: int = 500, now: datetime | None = None) -> int:
    """Deliver again every event still undelivered past its next attempt time. Returns how many were tried.

    Each row is claimed with a conditional update that also pushes its next attempt back, so two sweeps running
    at once do not both take it.
    """
    now = now or timezone.now()
    tried = 0
    for alias in settings.DATABASES:
        due = (
            OutboxEvent.objects.using(alias)
            .filter(delivered_at__isnull=True, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", "attempts")[:limit]
        )
        for event_id, attempts in list(due):
            claimed = (
                OutboxEvent.objects.using(alias)
                .filter(pk=event_id, delivered_at__isnull=True, next_attempt_at__lte=now)
                .update(attempts=F("attempts") + 1, next_attempt_at=now + backoff(attempts + 1))
            )
            if claimed:
                tried += 1
                deliver(event_id, using=alias)
    return tried


def purge(*, now: datetime | None = None) -> int:
    """Delete delivered events past the retention period, and consumer records four times older."""
    now = now or timezone.now()
    keep = timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    deleted = 0
    for alias in settings.DATABASES:
        deleted += (
            OutboxEvent.objects.using(alias).filter(delivered_at__isnull=False, delivered_at__lt=now - keep).delete()[0]
        )
        ProcessedEvent.objects.using(alias).filter(processed_at__lt=now - 4 * keep).delete()
    return deleted
