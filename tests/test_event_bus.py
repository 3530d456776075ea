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
from kernel.db import CrossModuleTransaction, atomic, current_module
from kernel.events import Command, DomainEvent, UnknownEvent, event_class
from kernel.models import Delivery
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


def test_a_command_has_exactly_one_handler():
    @dataclass(frozen=True, kw_only=True)
    class PaintWidget(Command):
        name: ClassVar[str] = "tests.widget.paint.v1"
        widget_id: int

    bus.subscribe(PaintWidget, key="tests.painter")(lambda command: None)
    try:
        with pytest.raises(ValueError, match="already has its handler"):
            bus.subscribe(PaintWidget, key="tests.second_painter")(lambda command: None)
    finally:
        bus.unsubscribe(PaintWidget, "tests.painter")


def rows(event: DomainEvent) -> dict[str, Delivery]:
    return {row.consumer: row for row in Delivery.objects.filter(event_id=event.event_id)}


# ---------------------------------------------------------------- one module, one transaction


@pytest.mark.django_db(transaction=True)
def test_a_module_transaction_cannot_open_inside_another_modules():
    with atomic(module="orders"):
        assert current_module() == "orders"
        with atomic(module="orders"):  # the same module nests (a savepoint)
            pass
        with (
            pytest.raises(CrossModuleTransaction, match="catalog's transaction opened inside orders'"),
            atomic(module="catalog"),
        ):
            pass
    assert current_module() is None


@pytest.mark.django_db(transaction=True)
def test_delivery_runs_after_the_commit_outside_the_publishers_transaction(recorder):
    seen: list[str | None] = []
    bus.subscribe(WidgetMade, mode=bus.INLINE, key="tests.where")(lambda event: seen.append(current_module()))
    try:
        with atomic(module="orders"):
            bus.publish(WidgetMade(widget_id=1, price=Decimal(1)))
        assert seen == ["tests"], "the subscriber runs in its own module's transaction, not in orders'"
    finally:
        bus.unsubscribe(WidgetMade, "tests.where")


# ---------------------------------------------------------------- commit and rollback


@pytest.mark.django_db(transaction=True)
def test_event_published_in_a_committed_transaction_reaches_every_consumer_once(recorder):
    with transaction.atomic():
        event = WidgetMade(widget_id=1, price=Decimal("5.00"))
        bus.publish(event)
        assert recorder.inline == [], "nothing is delivered before commit"
        assert recorder.async_ == [], "nothing is delivered before commit"
        assert set(rows(event)) == {"tests.on_inline", "tests.on_async"}, "one row per subscriber, with the event"

    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id]
    assert {(c, r.status, r.last_error) for c, r in rows(event).items()} == {
        ("tests.on_inline", "done", ""),
        ("tests.on_async", "done", ""),
    }


@pytest.mark.django_db(transaction=True)
def test_an_event_nobody_listens_to_is_recorded_as_done():
    event = WidgetMade(widget_id=1, price=Decimal("5.00"))
    with transaction.atomic():
        bus.publish(event)
    assert [(r.consumer, r.status) for r in Delivery.objects.filter(event_id=event.event_id)] == [("", "done")]
    assert bus.outbox_state().pending == 0


@pytest.mark.django_db(transaction=True)
def test_event_published_in_a_rolled_back_transaction_is_never_delivered(recorder):
    event = WidgetMade(widget_id=2, price=Decimal("5.00"))

    def failing_change() -> None:
        with transaction.atomic():
            bus.publish(event)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()

    assert not Delivery.objects.filter(event_id=event.event_id).exists()
    assert bus.sweep(now=later()) == 0
    assert recorder.inline == []
    assert recorder.async_ == []


# ---------------------------------------------------------------- failures, the sweep, dead deliveries


@pytest.mark.django_db(transaction=True)
def test_event_whose_broker_hand_off_fails_is_delivered_by_the_sweep(recorder, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to broker. Connection refused.")

    monkeypatch.setattr(run_handler, "apply_async", broker_down)
    with transaction.atomic():
        event = WidgetMade(widget_id=3, price=Decimal("5.00"))
        bus.publish(event)

    waiting = rows(event)["tests.on_async"]
    assert waiting.status == "pending"
    assert "Connection refused" in waiting.last_error
    assert rows(event)["tests.on_inline"].status == "done", "inline consumers do not need the broker"
    assert recorder.inline == [event.event_id]
    assert recorder.async_ == []

    assert bus.sweep() == 0, "the sweep waits OUTBOX_SWEEP_AFTER_SECONDS before trying again"
    monkeypatch.undo()  # the broker is back
    assert bus.sweep(now=later()) == 1, "only the delivery still pending is tried"

    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("done", 2)
    assert recorder.async_ == [event.event_id]
    assert recorder.inline == [event.event_id], "the inline consumer was not applied a second time"
    assert bus.sweep(now=later() + timedelta(hours=2)) == 0, "done deliveries are left alone"


@pytest.mark.django_db(transaction=True)
def test_failing_consumer_does_not_break_the_publisher_and_is_retried_with_backoff(recorder):
    recorder.fail_inline = True
    with transaction.atomic():
        event = WidgetMade(widget_id=4, price=Decimal("5.00"))
        bus.publish(event)  # the publishing request goes on

    failing = rows(event)["tests.on_inline"]
    assert failing.status == "pending"
    assert "inline consumer is broken" in failing.last_error
    assert recorder.async_ == [event.event_id], "one broken consumer does not hold back the others"

    assert bus.sweep(now=later()) == 1  # still broken
    failing.refresh_from_db()
    first_retry_at = failing.next_attempt_at
    assert (failing.status, failing.attempts) == ("pending", 2)
    assert bus.sweep(now=later()) == 0, "backing off"

    recorder.fail_inline = False
    assert bus.sweep(now=first_retry_at) == 1
    failing.refresh_from_db()
    assert failing.status == "done"
    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id]
    assert first_retry_at - later() >= timedelta(seconds=100), "second retry waits longer than the first"


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_keeps_failing_dies_after_its_last_attempt_and_staff_can_retry_it(
    recorder, settings, admin_client
):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    recorder.fail_inline = True
    with transaction.atomic():
        event = WidgetMade(widget_id=4, price=Decimal("5.00"))
        bus.publish(event)

    when = timezone.now()
    for _ in range(6):  # far more sweeps than attempts: it must stop
        when += timedelta(hours=2)
        bus.sweep(now=when)
    dead = rows(event)["tests.on_inline"]
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert "inline consumer is broken" in dead.last_error, "the admin shows why"
    assert bus.sweep(now=when + timedelta(days=1)) == 0, "nothing loops forever"
    assert bus.outbox_state().dead == 1

    page = admin_client.get("/admin/kernel/delivery/?status__exact=dead")
    assert page.status_code == 200
    assert b"inline consumer is broken" in page.content

    recorder.fail_inline = False  # fixed; staff retry it from the admin
    response = admin_client.post(
        "/admin/kernel/delivery/", {"action": "retry", "_selected_action": [dead.pk]}, follow=True
    )
    assert response.status_code == 200
    dead.refresh_from_db()
    assert dead.status == "done"
    assert recorder.inline == [event.event_id]
    assert recorder.async_ == [event.event_id], "the other consumer was not run again"


@pytest.mark.django_db(transaction=True)
def test_the_outbox_lag_is_the_age_of_the_oldest_undelivered_event(recorder, monkeypatch):
    assert bus.outbox_state().lag_seconds == 0
    monkeypatch.setattr(run_handler, "apply_async", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    with transaction.atomic():
        event = WidgetMade(widget_id=3, price=Decimal("5.00"))
        bus.publish(event)
    Delivery.objects.filter(event_id=event.event_id).update(created_at=timezone.now() - timedelta(minutes=5))
    state = bus.outbox_state()
    assert state.pending == 1
    assert 299 < state.lag_seconds < 320


# ---------------------------------------------------------------- at least once, applied once


@pytest.mark.django_db(transaction=True)
def test_same_event_delivered_twice_is_applied_once(recorder):
    with transaction.atomic():
        event = WidgetMade(widget_id=5, price=Decimal("5.00"))
        bus.publish(event)

    # Redelivery by every route: the task run again by the broker after a lost acknowledgement, a second worker...
    run_handler.apply(args=(str(event.event_id), "tests.on_async", "default"))
    assert bus.handle(event.event_id, "tests.on_async") is False
    assert recorder.async_ == [event.event_id]
    assert recorder.inline == [event.event_id]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_the_same_event_at_once_apply_it_once(recorder, monkeypatch):
    """Real threads, real PostgreSQL transactions: the claim on the delivery row serialises them."""
    monkeypatch.setattr(run_handler, "apply_async", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    event = WidgetMade(widget_id=6, price=Decimal("5.00"))
    with transaction.atomic():
        bus.publish(event)
    recorder.slow = 0.3
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
def test_purge_removes_old_delivered_events_only(recorder, monkeypatch):
    with transaction.atomic():
        old = WidgetMade(widget_id=7, price=Decimal("1"))
        bus.publish(old)
    monkeypatch.setattr(run_handler, "apply_async", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    with transaction.atomic():
        pending = WidgetMade(widget_id=8, price=Decimal("1"))
        bus.publish(pending)
    Delivery.objects.filter(event_id__in=[old.event_id, pending.event_id]).update(
        done_at=timezone.now() - timedelta(days=30)
    )

    assert bus.purge() == 3, "both deliveries of the old event, and the done one of the newer"
    assert list(Delivery.objects.values_list("event_id", "status")) == [(pending.event_id, "pending")]


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


def _work(statements: list[str]) -> list[str]:
    return [s.split()[0] for s in statements if s.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")]


@pytest.mark.django_db(transaction=True)
def test_an_idempotent_subscriber_runs_after_commit_and_costs_two_statements(idempotent_subscriber):
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
    assert rows(event)["tests.bump"].status == "done"
    assert _work(statements) == ["INSERT", "UPDATE"], "the new event is not read back"

    Delivery.objects.filter(event_id=event.event_id).update(status="pending")  # redelivered, say after a crash
    assert bus.handle(event.event_id, "tests.bump") is True
    assert calls == [event.event_id, event.event_id], "it simply runs again, which it is safe to do"


@pytest.mark.django_db(transaction=True)
def test_a_subscriber_that_keeps_a_claim_costs_two_statements_too(recorder):
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    bus.unsubscribe(WidgetMade, "tests.on_async")
    event = WidgetMade(widget_id=7, price=Decimal("5.00"))
    with connections["default"].execute_wrapper(record), transaction.atomic():
        bus.publish(event)
    assert recorder.inline == [event.event_id]
    assert _work(statements) == ["INSERT", "UPDATE"], "the claim is the delivery row, in the handler's transaction"


@pytest.mark.django_db(transaction=True)
def test_a_failed_idempotent_subscriber_stays_pending_until_the_sweep_succeeds(recorder, idempotent_subscriber):
    calls, state = idempotent_subscriber
    state["fail"] = 1
    with transaction.atomic():
        event = WidgetMade(widget_id=8, price=Decimal("5.00"))
        bus.publish(event)

    bump = rows(event)["tests.bump"]
    assert bump.status == "pending"
    assert "cache is down" in bump.last_error
    assert (recorder.inline, recorder.async_, calls) == ([event.event_id], [event.event_id], [])

    assert bus.sweep(now=later()) == 1
    assert {r.status for r in rows(event).values()} == {"done"}
    assert calls == [event.event_id]
    assert (recorder.inline, recorder.async_) == ([event.event_id], [event.event_id]), "the others applied once"


@pytest.mark.django_db(transaction=True)
def test_two_idempotent_subscribers_one_of_them_async_leave_the_event_delivered(idempotent_subscriber):
    """The event is delivered when both rows are done, whichever process ran each (on old code it never was)."""
    calls, _ = idempotent_subscriber
    sent: list[uuid.UUID] = []
    bus.subscribe(WidgetMade, mode=bus.ASYNC, key="tests.send_once", idempotent=True)(lambda e: sent.append(e.event_id))
    try:
        event = WidgetMade(widget_id=9, price=Decimal("5.00"))
        with transaction.atomic():
            bus.publish(event)
        assert calls == sent == [event.event_id]
        assert {r.status for r in rows(event).values()} == {"done"}
        assert bus.outbox_state().pending == 0
        assert bus.sweep(now=later() + timedelta(days=1)) == 0, "nothing left for the sweep"

        Delivery.objects.filter(event_id=event.event_id).update(status="pending")  # delivered again
        statements: list[str] = []

        def record(execute, sql, params, many, context):
            statements.append(sql.split()[0])
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(record):
            assert bus.handle(event.event_id, "tests.send_once") is True
        assert sent == [event.event_id, event.event_id], "it runs again; being idempotent, it does no harm"
        assert statements == ["SELECT", "UPDATE"], "read the event, mark it done: no bookkeeping"
    finally:
        bus.unsubscribe(WidgetMade, "tests.send_once")


@pytest.mark.django_db(transaction=True)
def test_a_subscriber_on_another_database_claims_the_event_in_its_own_inbox():
    """Published in catalog's outbox, applied by an orders subscriber. With the two on databases of their own
    (the `modules` run) the claim is a row in orders' inbox, taken in orders' transaction; the delivery row in
    catalog's outbox is marked afterwards. A crash between the two: the redelivery finds the claim and skips."""
    from kernel.db import db_for_module
    from kernel.models import ProcessedEvent

    applied: list[uuid.UUID] = []
    bus.subscribe(WidgetMade, mode=bus.INLINE, key="orders.note_widget")(lambda e: applied.append(e.event_id))
    try:
        event = WidgetMade(widget_id=10, price=Decimal("5.00"))
        with atomic(module="catalog"):
            bus.publish(event)
        outbox, inbox = db_for_module("catalog"), db_for_module("orders")
        row = Delivery.objects.using(outbox).get(event_id=event.event_id, consumer="orders.note_widget")
        assert row.status == "done"
        assert applied == [event.event_id]
        assert bus.handle(event.event_id, "orders.note_widget", using=outbox) is False, "done: not again"
        if outbox != inbox:
            assert ProcessedEvent.objects.using(inbox).filter(event_id=event.event_id).count() == 1
            Delivery.objects.using(outbox).filter(pk=row.pk).update(status="pending")  # the mark was lost
            assert bus.handle(event.event_id, "orders.note_widget", using=outbox) is False
            assert Delivery.objects.using(outbox).get(pk=row.pk).status == "done"
        assert applied == [event.event_id], "applied once"
    finally:
        bus.unsubscribe(WidgetMade, "orders.note_widget")
