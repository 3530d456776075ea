"""The event bus and its outbox: delivered if and only if the change committed, at least once, applied once."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

import pytest
from django.db import connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from kernel import bus
from kernel.events import DomainEvent, UnknownEvent, event_class
from kernel.models import OutboxEvent, ProcessedEvent
from kernel.tasks import run_handler

pytestmark = pytest.mark.modules


@dataclass(frozen=True, kw_only=True)
class WidgetMade(DomainEvent):
    name: ClassVar[str] = "tests.widget.made.v1"
    widget_id: int
    price: Decimal
    tags: tuple[str, ...] = ()
    note: str | None = None


class Recorder:
    """Consumers that remember what they applied, registered for one test."""

    def __init__(self) -> None:
        self.inline: list[uuid.UUID] = []
        self.async_: list[uuid.UUID] = []
        self.fail_inline = False
        self.slow = 0.0

    def on_inline(self, event: WidgetMade) -> None:
        if self.fail_inline:
            raise RuntimeError("inline consumer is broken")
        self.inline.append(event.event_id)

    def on_async(self, event: WidgetMade) -> None:
        time.sleep(self.slow)
        self.async_.append(event.event_id)


@pytest.fixture
def recorder():
    rec = Recorder()
    bus.subscribe(WidgetMade, mode=bus.INLINE, key="tests.on_inline")(rec.on_inline)
    bus.subscribe(WidgetMade, mode=bus.ASYNC, key="tests.on_async")(rec.on_async)
    yield rec
    bus.unsubscribe(WidgetMade, "tests.on_inline")
    bus.unsubscribe(WidgetMade, "tests.on_async")


def later() -> timezone.datetime:
    from django.conf import settings

    return timezone.now() + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS + 1)


# ---------------------------------------------------------------- events as data


def test_event_round_trips_through_json_payload():
    event = WidgetMade(widget_id=7, price=Decimal("19.90"), tags=("red", "big"), note=None)
    payload = event.to_payload()
    assert payload["price"] == "19.90"
    assert payload["event_id"] == str(event.event_id)
    assert WidgetMade.from_payload(payload) == event
    assert event_class("tests.widget.made.v1") is WidgetMade


def test_event_names_must_be_versioned_and_owned_by_their_module():
    with pytest.raises(TypeError, match=r"module\.thing\.happened\.v1"):

        @dataclass(frozen=True, kw_only=True)
        class Unversioned(DomainEvent):
            name: ClassVar[str] = "tests.widget.made"

    with pytest.raises(TypeError, match="must start with its module"):

        @dataclass(frozen=True, kw_only=True)
        class Foreign(DomainEvent):
            name: ClassVar[str] = "orders.order.placed.v1"

    with pytest.raises(UnknownEvent):
        event_class("tests.nothing.happened.v1")


def test_events_refuse_non_primitive_values():
    with pytest.raises(TypeError, match="primitives only"):
        WidgetMade(widget_id=1, price=Decimal(1), note=object()).to_payload()  # type: ignore[arg-type]


# ---------------------------------------------------------------- commit and rollback


@pytest.mark.django_db(transaction=True)
def test_event_published_in_a_committed_transaction_reaches_every_consumer_once(recorder):
    with transaction.atomic():
        event = WidgetMade(widget_id=1, price=Decimal("5.00"))
        bus.publish(event)
        assert recorder.inline == [], "nothing is delivered before commit"
        assert recorder.async_ == [], "nothing is delivered before commit"

    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id]
    row = OutboxEvent.objects.get(pk=event.event_id)
    assert row.delivered_at is not None
    assert row.last_error == ""
    assert set(ProcessedEvent.objects.values_list("consumer", flat=True)) == {"tests.on_inline", "tests.on_async"}


@pytest.mark.django_db(transaction=True)
def test_event_published_in_a_rolled_back_transaction_is_never_delivered(recorder):
    event = WidgetMade(widget_id=2, price=Decimal("5.00"))

    def failing_change() -> None:
        with transaction.atomic():
            bus.publish(event)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()

    assert not OutboxEvent.objects.filter(pk=event.event_id).exists()
    assert bus.sweep(now=later()) == 0
    assert recorder.inline == []
    assert recorder.async_ == []


# ---------------------------------------------------------------- failures and the sweep


@pytest.mark.django_db(transaction=True)
def test_event_whose_broker_hand_off_fails_is_delivered_by_the_sweep(recorder, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to broker. Connection refused.")

    monkeypatch.setattr(run_handler, "apply_async", broker_down)
    with transaction.atomic():
        event = WidgetMade(widget_id=3, price=Decimal("5.00"))
        bus.publish(event)

    row = OutboxEvent.objects.get(pk=event.event_id)
    assert row.delivered_at is None
    assert "Connection refused" in row.last_error
    assert recorder.inline == [event.event_id], "inline consumers do not need the broker"
    assert recorder.async_ == []

    assert bus.sweep() == 0, "the sweep waits OUTBOX_SWEEP_AFTER_SECONDS before trying again"
    monkeypatch.undo()  # the broker is back
    assert bus.sweep(now=later()) == 1

    row.refresh_from_db()
    assert row.delivered_at is not None
    assert row.attempts == 1
    assert recorder.async_ == [event.event_id]
    assert recorder.inline == [event.event_id], "the inline consumer was not applied a second time"
    assert bus.sweep(now=later() + timedelta(hours=2)) == 0, "delivered events are left alone"


@pytest.mark.django_db(transaction=True)
def test_failing_consumer_does_not_break_the_publisher_and_is_retried_with_backoff(recorder):
    recorder.fail_inline = True
    with transaction.atomic():
        event = WidgetMade(widget_id=4, price=Decimal("5.00"))
        bus.publish(event)  # the publishing request goes on

    row = OutboxEvent.objects.get(pk=event.event_id)
    assert row.delivered_at is None
    assert "inline consumer is broken" in row.last_error
    assert recorder.async_ == [event.event_id], "one broken consumer does not hold back the others"

    assert bus.sweep(now=later()) == 1  # still broken
    row.refresh_from_db()
    first_retry_at = row.next_attempt_at
    assert row.attempts == 1
    assert row.delivered_at is None
    assert bus.sweep(now=later()) == 0, "backing off"

    recorder.fail_inline = False
    assert bus.sweep(now=first_retry_at) == 1
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id]
    assert first_retry_at - later() >= timedelta(seconds=100), "second retry waits longer than the first"


# ---------------------------------------------------------------- at least once, applied once


@pytest.mark.django_db(transaction=True)
def test_same_event_delivered_twice_is_applied_once(recorder):
    with transaction.atomic():
        event = WidgetMade(widget_id=5, price=Decimal("5.00"))
        bus.publish(event)

    # Redelivery by every route: the sweep after a lost acknowledgement, the task run again by the broker, ...
    OutboxEvent.objects.filter(pk=event.event_id).update(delivered_at=None)
    assert bus.deliver(event.event_id) is True
    run_handler.apply(args=(str(event.event_id), "tests.on_async", "default"))
    assert bus.handle(event.event_id, "tests.on_async") is False

    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id]
    assert ProcessedEvent.objects.filter(event_id=event.event_id).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_the_same_event_at_once_apply_it_once(recorder):
    """Real threads, real PostgreSQL transactions: the unique (consumer, event) row serialises them."""
    recorder.slow = 0.3
    event = WidgetMade(widget_id=6, price=Decimal("5.00"))
    OutboxEvent.objects.create(id=event.event_id, name=event.name, payload=event.to_payload())
    start = threading.Barrier(4)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            results.append(bus.handle(event.event_id, "tests.on_async"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert recorder.async_ == [event.event_id]


@pytest.mark.django_db(transaction=True)
def test_purge_removes_old_delivered_events_only(recorder):
    with transaction.atomic():
        old = WidgetMade(widget_id=7, price=Decimal("1"))
        bus.publish(old)
    pending = WidgetMade(widget_id=8, price=Decimal("1"))
    OutboxEvent.objects.create(id=pending.event_id, name=pending.name, payload=pending.to_payload())
    OutboxEvent.objects.filter(pk=old.event_id).update(delivered_at=timezone.now() - timedelta(days=30))

    assert bus.purge() == 1
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [pending.event_id]


# ---------------------------------------------------------------- idempotent subscribers


@pytest.fixture
def idempotent_subscriber():
    calls: list[uuid.UUID] = []
    state = {"fail": 0}

    def bump(event: WidgetMade) -> None:
        if state["fail"]:
            state["fail"] -= 1
            raise RuntimeError("cache is down")
        calls.append(event.event_id)

    bus.subscribe(WidgetMade, mode=bus.INLINE, key="tests.bump", idempotent=True)(bump)
    yield calls, state
    bus.unsubscribe(WidgetMade, "tests.bump")


@pytest.mark.django_db(transaction=True)
def test_an_idempotent_subscriber_runs_after_commit_keeps_no_record_and_costs_two_statements(idempotent_subscriber):
    calls, _ = idempotent_subscriber
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    event = WidgetMade(widget_id=7, price=Decimal("5.00"))
    with connections["default"].execute_wrapper(record), transaction.atomic():
        bus.publish(event)
        assert calls == [], "nothing before commit"
    assert calls == [event.event_id]
    assert OutboxEvent.objects.get(pk=event.event_id).delivered_at is not None
    assert not ProcessedEvent.objects.exists(), "no delivery record for an idempotent subscriber"
    work = [s.split()[0] for s in statements if s.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")]
    assert work == ["INSERT", "UPDATE"], "the new event is not read back"

    OutboxEvent.objects.filter(pk=event.event_id).update(delivered_at=None)  # redelivered, say after a crash
    assert bus.deliver(event.event_id) is True
    assert calls == [event.event_id, event.event_id], "it simply runs again, which it is safe to do"


@pytest.mark.django_db(transaction=True)
def test_a_failed_idempotent_subscriber_keeps_the_event_undelivered_until_the_sweep_succeeds(
    recorder, idempotent_subscriber
):
    calls, state = idempotent_subscriber
    state["fail"] = 1
    with transaction.atomic():
        event = WidgetMade(widget_id=8, price=Decimal("5.00"))
        bus.publish(event)

    row = OutboxEvent.objects.get(pk=event.event_id)
    assert row.delivered_at is None, "the worker that applied the async consumer must not mark it delivered"
    assert "cache is down" in row.last_error
    assert (recorder.inline, recorder.async_, calls) == ([event.event_id], [event.event_id], [])

    assert bus.sweep(now=later()) == 1
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert calls == [event.event_id]
    assert (recorder.inline, recorder.async_) == ([event.event_id], [event.event_id]), "the others applied once"


@pytest.mark.django_db(transaction=True)
def test_an_async_idempotent_subscriber_keeps_no_record_and_the_worker_that_ran_it_marks_the_event_delivered():
    calls: list[uuid.UUID] = []
    bus.subscribe(WidgetMade, mode=bus.ASYNC, key="tests.send_once", idempotent=True)(
        lambda e: calls.append(e.event_id)
    )
    try:
        event = WidgetMade(widget_id=9, price=Decimal("5.00"))
        with transaction.atomic():
            bus.publish(event)
        assert calls == [event.event_id]
        assert OutboxEvent.objects.get(pk=event.event_id).delivered_at is not None, "not left to the sweep"
        assert not ProcessedEvent.objects.exists()

        OutboxEvent.objects.filter(pk=event.event_id).update(delivered_at=None)  # delivered again, say by the sweep
        statements: list[str] = []

        def record(execute, sql, params, many, context):
            statements.append(sql.split()[0])
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(record):
            assert bus.handle(event.event_id, "tests.send_once") is True
        assert calls == [event.event_id, event.event_id], "it runs again; being idempotent, it does no harm"
        assert statements == ["SELECT", "UPDATE"], "read the event, mark it delivered: no bookkeeping"
        assert OutboxEvent.objects.get(pk=event.event_id).delivered_at is not None
    finally:
        bus.unsubscribe(WidgetMade, "tests.send_once")
