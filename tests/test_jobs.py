"""Workers and jobs: each task's queue, dead tasks and their retry, periodic jobs that run once at a time, and
reserved stock reconciled against the held reservations."""

from __future__ import annotations

import importlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.models import F

from catalog import tasks as catalog_tasks
from catalog.models import StockItem
from catalog.services import stock_commit, stock_release, stock_reserve
from config.celery import app as celery_app
from kernel import bus
from kernel.celery import QUEUE_GROUPS, exclusive, lock_key, queue_name, worker_queues
from kernel.events import DomainEvent
from kernel.models import DeadTask
from kernel.tasks import outbox_sweep, run_handler
from tests import worker_tasks
from tests.factories import make_category, make_product

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- queues


@dataclass(frozen=True, kw_only=True)
class ParcelPacked(DomainEvent):
    name: ClassVar[str] = "tests.parcel.packed.v1"
    parcel_id: int


def routed_queue(name: str, **options) -> str:
    """The queue Celery's router gives a task sent now (what apply_async and beat do)."""
    return celery_app.amqp.router.route(options, name, (), {})["queue"].name


@pytest.fixture
def default_queue():
    saved = celery_app.conf.task_default_queue
    yield lambda name: celery_app.conf.update(task_default_queue=name)
    celery_app.conf.task_default_queue = saved


def test_named_tasks_go_to_their_groups_queue_named_after_the_default_queue_at_send_time(default_queue):
    expected = {
        "kernel.outbox_sweep": "events",
        "kernel.outbox_purge": "events",
        "kernel.worker_heartbeat": "events",
        "payments.resolve_pending": "payments",
        "payments.test_gateway_notify": "payments",
        "catalog.expire_reservations": "fulfilment",
        "catalog.reconcile_reservations": "fulfilment",
        "orders.expire_unpaid": "fulfilment",
        "webhooks.deliver": "webhooks",
        "webhooks.send_due": "webhooks",
    }
    default_queue("shop")
    for name, group in expected.items():
        importlib.import_module(f"{name.split('.')[0]}.tasks")  # as the worker's autodiscovery does
        assert name in celery_app.tasks, name
        assert routed_queue(name) == f"shop.{group}", name
    default_queue("test-1234")  # what tests/test_worker.py does: every task follows
    assert {routed_queue(name) for name in expected} <= set(worker_queues("test-1234"))
    assert routed_queue("payments.resolve_pending") == "test-1234.payments"
    assert routed_queue("tests.always_fails") == "test-1234", "a task of no group: the default queue itself"
    assert routed_queue("kernel.run_handler", queue="test-1234.email") == "test-1234.email", "a queue given wins"


@pytest.mark.django_db
def test_a_subscribers_task_goes_to_the_queue_of_its_group(
    monkeypatch, default_queue, django_capture_on_commit_callbacks
):
    default_queue("shop")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(run_handler, "apply_async", lambda args, **options: sent.append((args[1], options["queue"])))
    keys = {group: f"tests.on_{group}" for group in QUEUE_GROUPS}
    for group, key in keys.items():
        bus.subscribe(ParcelPacked, key=key, queue=group, idempotent=True)(lambda event: None)
    bus.subscribe(ParcelPacked, key="tests.on_default", idempotent=True)(lambda event: None)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            bus.publish(ParcelPacked(parcel_id=1))
    finally:
        for key in [*keys.values(), "tests.on_default"]:
            bus.unsubscribe(ParcelPacked, key)
    assert dict(sent) == {**{key: f"shop.{group}" for group, key in keys.items()}, "tests.on_default": "shop.events"}


def test_the_shops_subscribers_declare_their_groups():
    from accounts.events import UserRegistered
    from payments.events import CancelPayment, CapturePayment, RefundPayment

    assert {sub.key: sub.queue for sub in bus.subscriptions(UserRegistered.name)} == {
        "accounts.send_welcome_email": "email"
    }
    for command in (CapturePayment, CancelPayment, RefundPayment):
        assert [sub.queue for sub in bus.subscriptions(command.name)] == ["payments"]


def test_an_unknown_queue_group_is_refused():
    with pytest.raises(ValueError, match="queue must be one of"):
        bus.subscribe(ParcelPacked, key="tests.nowhere", queue="shipping")
    with pytest.raises(ValueError, match="unknown queue group"):
        queue_name("shipping")
    with pytest.raises(ValueError, match="unknown queue group"):
        worker_queues("shop", ["email", "shipping"])
    assert worker_queues("shop", ["email", "events"]) == ["shop.email", "shop.events"]
    assert worker_queues("shop") == ["shop", *(f"shop.{group}" for group in QUEUE_GROUPS)]


def test_the_compose_workers_and_make_worker_cover_every_queue_and_beat_runs_once():
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    listened: list[str] = []
    for service in compose["services"].values():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "config", "worker"]:
            listened += command[command.index("-Q") + 1].split(",")
    assert sorted(listened) == sorted(worker_queues("shop")), "each queue has one worker service"
    beats = [name for name, service in compose["services"].items() if "beat" in (service.get("command") or [])]
    assert beats == ["beat"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^worker:.*worker_queues", makefile, re.M | re.S)


# ---------------------------------------------------------------- dead tasks


@pytest.fixture
def fresh_tries():
    worker_tasks.tries.clear()
    worker_tasks.failing["flaky"] = True
    yield worker_tasks.tries
    worker_tasks.failing["flaky"] = True


@pytest.mark.django_db
def test_a_task_failing_every_try_is_retried_then_recorded_dead_once_with_its_arguments(fresh_tries, caplog):
    worker_tasks.always_fails.delay("NW-42", reason="the label printer is offline")
    assert fresh_tries == ["NW-42"] * 3, "the first try and two retries (eager mode retries too)"
    row = DeadTask.objects.get()
    assert (row.name, row.args, row.kwargs, row.attempts, row.status) == (
        "tests.always_fails", ["NW-42"], {"reason": "the label printer is offline"}, 3, "dead"
    )  # fmt: skip
    assert row.error == "RuntimeError: NW-42: the label printer is offline"
    assert row.failed_at is not None
    assert row.task_id
    assert any("is dead after 3 tries" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.django_db
def test_one_failing_task_does_not_stop_the_next(fresh_tries):
    worker_tasks.always_fails.delay("NW-1", reason="broken")
    worker_tasks.failing["flaky"] = False
    assert worker_tasks.flaky.delay("NW-2").get() == "NW-2"
    assert list(DeadTask.objects.values_list("name", flat=True)) == ["tests.always_fails"]


@pytest.mark.django_db
def test_the_admin_retry_sends_a_dead_task_again_and_marks_it_retried(admin_client, fresh_tries):
    worker_tasks.flaky.delay("NW-7")
    row = DeadTask.objects.get(name="tests.flaky")
    assert fresh_tries == ["NW-7", "NW-7"]
    worker_tasks.failing["flaky"] = False  # the mail server is back

    response = admin_client.post(
        "/admin/kernel/deadtask/", {"action": "retry", "_selected_action": [row.pk]}, follow=True
    )
    assert "1 task(s) sent again." in response.content.decode()
    assert fresh_tries == ["NW-7", "NW-7", "NW-7"], "sent again with its arguments (in-process without a broker)"
    row.refresh_from_db()
    assert row.status == "retried"
    assert row.retried_at is not None
    assert DeadTask.objects.count() == 1, "it succeeded: no new dead row"

    admin_client.post("/admin/kernel/deadtask/", {"action": "retry", "_selected_action": [row.pk]})
    assert len(fresh_tries) == 3, "a row already retried is not sent twice"
    assert admin_client.get("/admin/kernel/deadtask/").status_code == 200
    assert admin_client.get(f"/admin/kernel/deadtask/{row.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_a_dead_task_that_fails_again_is_a_new_dead_row(admin_client, fresh_tries):
    worker_tasks.always_fails.delay("NW-9", reason="still broken")
    first = DeadTask.objects.get()
    admin_client.post("/admin/kernel/deadtask/", {"action": "retry", "_selected_action": [first.pk]})
    assert len(fresh_tries) == 6
    assert sorted(DeadTask.objects.values_list("status", flat=True)) == ["dead", "retried"]


@pytest.mark.django_db
def test_a_dead_task_stays_dead_when_the_broker_is_down_on_retry(monkeypatch, fresh_tries):
    from kernel.deadletter import dead_tasks_retry

    worker_tasks.always_fails.delay("NW-3", reason="x")
    row = DeadTask.objects.get()

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(worker_tasks.always_fails, "apply_async", broker_down)
    assert dead_tasks_retry(ids=[row.pk]) == 0
    row.refresh_from_db()
    assert (row.status, row.retried_at) == ("dead", None)


@pytest.mark.django_db
def test_a_try_stopped_in_the_workers_main_process_is_recorded_dead_too():
    """The hard time limit kills the pool process, and a worker lost on the last try fails there too: Task.on_failure
    does not run, the task_failure signal does. A process that dies is a try like any other, never a loop."""
    from billiard.exceptions import TimeLimitExceeded, WorkerLostError
    from celery.signals import task_failure

    task = worker_tasks.always_fails
    assert task.retry_on_worker_lost is True
    task_failure.send(sender=task, task_id="t-1", exception=TimeLimitExceeded(300), args=["NW-5"],
                      kwargs={"reason": "hung"}, einfo=None)  # fmt: skip
    task_failure.send(sender=task, task_id="t-2", exception=WorkerLostError("killed"), args=["NW-6"], kwargs={},
                      einfo=None)  # fmt: skip
    task_failure.send(
        sender=task, task_id="t-3", exception=RuntimeError("in the pool process"), args=[], kwargs={}, einfo=None
    )  # fmt: skip (that one is recorded by on_failure, in the pool process)
    rows = list(DeadTask.objects.order_by("task_id").values_list("task_id", "args", "error"))
    assert [(task_id, args) for task_id, args, _ in rows] == [("t-1", ["NW-5"]), ("t-2", ["NW-6"])]
    assert rows[0][2].startswith("TimeLimitExceeded")
    assert rows[1][2] == "WorkerLostError: killed"


@pytest.mark.django_db
def test_a_periodic_job_is_not_retried_nor_recorded_dead_its_next_run_is_its_retry(monkeypatch):
    calls = []

    def broken() -> int:
        calls.append(1)
        raise RuntimeError("database blip")

    monkeypatch.setattr(catalog_tasks, "reservations_expire", broken)
    result = catalog_tasks.expire_reservations.delay()
    assert result.failed()
    assert calls == [1]
    assert not DeadTask.objects.exists()


# ---------------------------------------------------------------- periodic jobs: one run at a time


def test_lock_keys_are_stable_signed_64_bit_integers():
    assert lock_key("catalog.expire_reservations") == lock_key("catalog.expire_reservations")
    assert lock_key("catalog.expire_reservations") != lock_key("orders.expire_unpaid")
    assert -(2**63) <= lock_key("kernel.outbox_sweep") < 2**63


@pytest.mark.django_db
def test_exclusive_is_taken_and_released():
    with exclusive("tests.job", module="catalog") as mine:
        assert mine
    with exclusive("tests.job", module="catalog") as mine:
        assert mine, "released at the end of the block"


def _in_thread(target, results: dict, key: str) -> threading.Thread:
    def run() -> None:
        try:
            results[key] = target()
        except Exception as exc:  # shown by the assertion on results
            results[key] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("task", "owner", "job"),
    [
        (catalog_tasks.expire_reservations, catalog_tasks, "reservations_expire"),
        (outbox_sweep, bus, "sweep"),
    ],
    ids=["catalog.expire_reservations", "kernel.outbox_sweep"],
)
def test_two_concurrent_runs_of_a_periodic_job_one_runs_and_one_skips(monkeypatch, task, owner, job):
    """Two workers (threads, each with its own PostgreSQL connection) start the same job at once."""
    started, release = threading.Event(), threading.Event()
    runs = []

    def slow_job(**kwargs) -> int:
        runs.append(threading.get_ident())
        started.set()
        assert release.wait(20), "the test never let the job finish"
        return 7

    monkeypatch.setattr(owner, job, slow_job)
    results: dict[str, object] = {}
    first = _in_thread(task, results, "first")
    assert started.wait(20), "the first run started"
    second = _in_thread(task, results, "second")
    second.join(20)
    assert results.get("second", "not finished") is None, "the second run found the lock taken and skipped"
    release.set()
    first.join(20)
    assert results["first"] == 7
    assert len(runs) == 1, "the job body ran once"

    third = _in_thread(task, results, "third")
    third.join(20)
    release.set()
    assert results["third"] == 7, "the lock is free again once the first run ended"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_releases_the_lock(monkeypatch):
    def broken() -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(catalog_tasks, "reservations_expire", broken)
    with pytest.raises(RuntimeError):
        catalog_tasks.expire_reservations()
    results: dict[str, object] = {}
    thread = _in_thread(lambda: exclusive_taken("catalog.expire_reservations"), results, "other")
    thread.join(20)
    assert results["other"] is True


def exclusive_taken(name: str) -> bool:
    with exclusive(name, module="catalog") as mine:
        return mine


# ---------------------------------------------------------------- reconciling reserved stock


@pytest.fixture
def variants():
    category = make_category("Garden")
    spade = make_product("Spade", category, variants=[{"price": "20.00", "stock": 10, "sku": "SPADE-1"}])
    rake = make_product("Rake", category, variants=[{"price": "15.00", "stock": 10, "sku": "RAKE-1"}])
    return spade.variants.get(), rake.variants.get()


@pytest.mark.django_db
def test_a_consistent_shop_reports_nothing(variants, capsys):
    spade, rake = variants
    stock_reserve(key="o-1", lines=[(spade.pk, 2), (rake.pk, 1)])
    stock_reserve(key="o-2", lines=[(spade.pk, 3)])
    stock_reserve(key="o-3", lines=[(rake.pk, 4)])
    stock_commit(key="o-2")
    stock_release(key="o-3")
    assert catalog_tasks.reconcile_reservations() == []
    call_command("stock_reconcile")
    assert "Reserved stock matches the held reservations." in capsys.readouterr().out


@pytest.mark.django_db
def test_a_planted_difference_is_reported_logged_and_printed_and_left_as_it_is(variants, caplog, capsys):
    spade, rake = variants
    stock_reserve(key="o-1", lines=[(spade.pk, 2), (rake.pk, 1)])
    StockItem.objects.filter(variant_id=spade.pk).update(reserved=F("reserved") + 3)  # a bug, or a hand edit

    with caplog.at_level(logging.ERROR, logger="catalog.reconcile"):
        found = catalog_tasks.reconcile_reservations()
    assert found == [{"variant_id": spade.pk, "sku": "SPADE-1", "reserved": 5, "held": 2}]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"reserved stock of variant {spade.pk} (SKU SPADE-1) is 5, but its held reservations hold 2"]
    assert StockItem.objects.get(variant_id=spade.pk).reserved == 5, "reported, not fixed"

    with pytest.raises(SystemExit) as exit_:
        call_command("stock_reconcile")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert f"variant {spade.pk} (SKU SPADE-1): 5 reserved, 2 held" in out
    assert "RAKE-1" not in out


@pytest.mark.django_db
def test_a_reserved_count_lower_than_the_held_lines_is_reported_too(variants):
    spade, _ = variants
    stock_reserve(key="o-1", lines=[(spade.pk, 4)])
    StockItem.objects.filter(variant_id=spade.pk).update(reserved=0)
    assert [(d["sku"], d["reserved"], d["held"]) for d in catalog_tasks.reconcile_reservations()] == [("SPADE-1", 0, 4)]


def test_reconcile_runs_every_ten_minutes():
    from django.conf import settings

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "catalog.reconcile_reservations")
    assert entry["schedule"] == 600
