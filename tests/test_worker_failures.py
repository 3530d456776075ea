"""Workers that lose nothing: real `celery worker` processes killed with SIGKILL, and a broker that stops, while
orders are placed, paid and shipped. PostgreSQL, the broker of CELERY_BROKER_URL/REDIS_URL, real processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from config.celery import app as celery_app
from kernel import bus
from kernel.db import db_for_module
from kernel.models import Delivery
from orders import services
from orders.events import OrderPaid
from orders.handlers import fulfil_automatically
from orders.models import Order, Shipment
from payments.models import Transaction
from tests import outbox
from tests.factories import make_category, make_product
from tests.test_orders import pay, place
from tests.test_worker import _test_database_url, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.modules, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def worker_queues(queue: str) -> list[str]:
    """Every queue a worker of this test listens to."""
    from kernel.celery import worker_queues as every_queue

    return every_queue(queue)


class Workers:
    """Start (and kill) real worker processes on a queue of this test's own."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.queue = f"test-{uuid.uuid4().hex[:10]}"
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            **{f"DATABASE_URL_{a.upper()}": _test_database_url(a) for a in settings.DATABASES if a != "default"},
            "CELERY_QUEUE": self.queue,
            "DEBUG": "1",
            **env,
        }
        self.processes: list[subprocess.Popen] = []

    def start(self) -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"worker-{len(self.processes) + 1}.log"
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                   "--queues", ",".join(worker_queues(self.queue)), "--hostname", f"{uuid.uuid4().hex[:8]}@%h",
                   "--without-gossip", "--without-mingle", "--loglevel=INFO"]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        wait_for(lambda: b"ready." in log.read_bytes() or proc.poll() is not None, 60, "the worker to start", log)
        assert proc.poll() is None, log.read_text()[-3000:]
        return proc, log

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "task_default_queue")}

    def make(**env: str) -> Workers:
        group = Workers(tmp_path, env)
        made.append(group)
        celery_app.conf.update(task_always_eager=False, task_default_queue=group.queue)
        return group

    try:
        yield make
    finally:
        celery_app.conf.update(saved)
        for group in made:
            group.stop_all()
        connection.close()


@pytest.fixture
def auto_fulfil(settings):
    settings.ORDERS_AUTO_FULFIL = True
    bus.subscribe(OrderPaid, idempotent=True, key="orders.fulfil_automatically", queue="fulfilment")(
        fulfil_automatically
    )
    yield
    bus.unsubscribe(OrderPaid, "orders.fulfil_automatically")


def mails(folder: Path, text: str) -> int:
    return sum(text in path.read_text(errors="replace") for path in folder.glob("*.log")) if folder.exists() else 0


def later() -> timezone.datetime:
    return timezone.now() + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS + 1)


def test_a_worker_killed_in_the_middle_of_shipping_an_order_is_replaced_and_ships_charges_and_tells_once(
    workers, auto_fulfil, tmp_path
):
    mail_dir = tmp_path / "mail"
    group = workers(ORDERS_AUTO_FULFIL="1", EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                    EMAIL_FILE_PATH=str(mail_dir))  # fmt: skip
    lamp = make_product("Lamp", make_category("Home"), variants=[{"price": "40.00", "stock": 5}]).variants.get()
    order = place(lamp, 2, key="killed-worker")
    pay(order)  # paid here (inline); the shipping task waits in the broker for a worker
    order_id = Order.objects.get(number=order.number).pk

    # Another session holds a parcel number of this order, uncommitted: the worker's shipping transaction will
    # wait on it, in the middle of its work, when it is killed.
    orders_db = db_for_module("orders")
    blocker = psycopg.connect(_test_database_url(orders_db))
    blocker.execute(
        "INSERT INTO orders_shipment (order_id, number, status, carrier, tracking_number, tracking_url, created_at) "
        "VALUES (%s, 1, 'packing', 'blocker', '', '', now())",
        (order_id,),
    )
    first, log = group.start()

    def waiting_on_a_lock() -> bool:
        with connections[orders_db].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")  # fmt: skip
            return cursor.fetchone()[0] > 0

    wait_for(waiting_on_a_lock, 60, "the worker to be in the middle of shipping the order", log)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=20)
    blocker.rollback()
    blocker.close()
    assert not Shipment.objects.filter(order_id=order_id).exists(), "the killed transaction left nothing"

    _, log = group.start()  # a new worker; the sweep (beat) hands it what the dead one did not finish
    bus.sweep(now=later())

    def shipped_and_told() -> bool:
        return (
            Order.objects.get(pk=order_id).status == "shipped"
            and Transaction.objects.filter(kind="capture", result="success").exists()
            and mails(mail_dir, "is on its way") == 1
        )

    wait_for(shipped_and_told, 90, "the order to be shipped, charged and the customer told", log)
    time.sleep(2)  # anything that would happen twice happens now
    bus.sweep(now=later() + timedelta(hours=1))
    time.sleep(2)
    assert Shipment.objects.filter(order_id=order_id).count() == 1
    captures = Transaction.objects.filter(kind="capture")
    assert [(t.result, t.amount) for t in captures] == [("success", order.total)], "charged once, in full"
    assert mails(mail_dir, "is on its way") == 1
    assert mails(mail_dir, "confirmed") == 1
    wait_for(lambda: not Delivery.objects.exclude(status="done").exists(), 60, "every delivery to end done", log)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A Redis server of this test's own, to stop and start as the broker (the machine's one stays up)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed (.ci/run makes sure)"
    port = _free_port()
    processes: list[subprocess.Popen] = []

    def start() -> None:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                 "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)  # fmt: skip
        processes.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the test's Redis did not start")

    def stop() -> None:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    start.stop = stop  # type: ignore[attr-defined]
    start.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        stop()


def reset_broker_connections() -> None:
    """Forget this process's broker connections (after the broker's address changed or it restarted)."""
    from kombu import pools

    pools.reset()  # kombu keeps one pool per broker address, process-wide
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_orders_placed_and_paid_while_the_broker_is_down_are_all_handled_once_when_it_is_back(
    workers, own_redis, tmp_path
):
    mail_dir = tmp_path / "mail"
    own_redis()
    broker = own_redis.url
    saved_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = broker
    reset_broker_connections()
    try:
        group = workers(CELERY_BROKER_URL=broker, REDIS_URL=broker, ORDERS_AUTO_FULFIL="0",
                        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                        EMAIL_FILE_PATH=str(mail_dir))  # fmt: skip
        _, log = group.start()
        own_redis.stop()  # the broker goes away; the worker waits for it
        lamp = make_product("Lamp", make_category("Home"), variants=[{"price": "40.00", "stock": 9}]).variants.get()
        numbers = []
        for i in range(3):
            order = place(lamp, 1, key=f"broker-down-{i}")
            pay(order)
            numbers.append(order.number)
        assert all(services.order_find(number=n).status == services.OrderStatus.PAID for n in numbers), (
            "every order is placed and paid without the broker"
        )
        waiting = outbox.undelivered()
        assert ("orders.order.paid.v1", "orders.send_order_confirmation") in waiting, "the emails wait"

        own_redis()  # the broker is back: the sweep hands the workers what waited
        reset_broker_connections()
        bus.sweep(now=later())
        wait_for(lambda: mails(mail_dir, "confirmed") >= 3, 90,
                 f"every confirmation to be sent (waiting: {outbox.undelivered()})", log)  # fmt: skip
        wait_for(lambda: not outbox.undelivered(), 60, "every delivery to end done", log)
        bus.sweep(now=later() + timedelta(hours=1))
        time.sleep(2)
        assert mails(mail_dir, "confirmed") == 3, "each sent once"
    finally:
        celery_app.conf.broker_url = saved_broker
        reset_broker_connections()


def test_a_capture_the_bank_does_not_answer_waits_and_is_retried_charging_once_for_the_right_amount(
    workers, auto_fulfil, tmp_path
):
    from payments.services import payment_get, payments_resolve_pending

    group = workers(ORDERS_AUTO_FULFIL="1")
    _, log = group.start()
    lamp = make_product("Lamp", make_category("Home"), variants=[{"price": "40.00", "stock": 5}]).variants.get()
    order = place(lamp, 2, key="slow-capture")
    pay(order, "4000000000000341")  # authorised; the bank will not answer the first capture
    payment_id = Order.objects.values_list("payment_id", flat=True).get(number=order.number)

    def capture_waiting() -> bool:
        from payments.gateways.test_gateway import SLOW
        from payments.models import TestGatewayCharge

        timed_out = not TestGatewayCharge.objects.get().operations.get(SLOW)  # the bank did not answer
        return timed_out and Transaction.objects.filter(kind="capture", result="pending").exists()

    wait_for(capture_waiting, 60, "the worker to ship the order and its capture to time out", log)
    assert Order.objects.get(number=order.number).status == "shipped", "the parcel left; the charge waits"
    assert payment_get(payment_id=payment_id).amount_captured == 0

    payments_resolve_pending(older_than=timedelta(0))  # the periodic task, as beat runs it every minute
    payments_resolve_pending(older_than=timedelta(0))  # and again: nothing more
    payment = payment_get(payment_id=payment_id)
    assert payment.amount_captured == order.total == Decimal("80.00")
    assert [(t.result, t.amount) for t in Transaction.objects.filter(kind="capture")] == [("success", order.total)]
