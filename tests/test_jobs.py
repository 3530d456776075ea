"""Workers and jobs: each task's queue."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from config.celery import app as celery_app
from kernel import bus
from kernel.celery import QUEUE_GROUPS, queue_name, worker_queues
from kernel.events import DomainEvent
from kernel.tasks import run_handler

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
        "orders.expire_unpaid": "fulfilment",
    }
    default_queue("shop")
    for name, group in expected.items():
        importlib.import_module(f"{name.split('.')[0]}.tasks")  # as the worker's autodiscovery does
        assert name in celery_app.tasks, name
        assert routed_queue(name) == f"shop.{group}", name
    default_queue("test-1234")  # what tests/test_worker.py does: every task follows
    assert {routed_queue(name) for name in expected} <= set(worker_queues("test-1234"))
    assert routed_queue("payments.resolve_pending") == "test-1234.payments"
    assert routed_queue("tests.no_group") == "test-1234", "a task of no group: the default queue itself"
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
