"""A real `celery worker` process, fed through Redis (or RabbitMQ: CELERY_BROKER_URL=amqp://..., as .ci/run does a
second time), writing to the PostgreSQL test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, connections

from accounts.services import user_register
from config.celery import app as celery_app
from kernel.celery import worker_queues
from kernel.db import db_for_module
from kernel.models import DeadTask, Delivery, WorkerHeartbeat
from kernel.tasks import worker_heartbeat

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.modules, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _test_database_url(alias: str = "default") -> str:
    s = connections[alias].settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def waiting(queue: str) -> int:
    """How many messages wait in a queue of the broker (Redis or RabbitMQ); 0 if it does not exist."""
    with celery_app.connection_for_write() as conn, conn.channel() as channel:
        try:
            return channel.queue_declare(queue=queue, passive=True).message_count
        except Exception:
            return 0


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """Start workers on a default queue of their own, so a developer's `make worker` cannot take these tasks:
    start_worker() on every group's queue under it (kernel.celery.worker_queues), start_worker(groups=["email"])
    on those groups' only. Each test's queues are deleted from the broker afterwards."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    started: list[subprocess.Popen] = []
    saved = {key: celery_app.conf[key] for key in ("task_always_eager", "task_default_queue")}
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)

    def start(groups: list[str] | None = None) -> tuple[str, Path]:
        log = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            **{f"DATABASE_URL_{alias.upper()}": _test_database_url(alias) for alias in connections
               if alias != "default"},
            "CELERY_QUEUE": queue,
            "DEBUG": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        }  # fmt: skip
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                   "--queues", ",".join(worker_queues(queue, groups)), "--include", "tests.worker_tasks",
                   "--hostname", f"{queue}-{len(started)}@%h", "--without-gossip", "--without-mingle",
                   "--loglevel=INFO"]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        wait_for(lambda: b"ready." in log.read_bytes() or proc.poll() is not None, 60, "the worker to start", log)
        assert proc.poll() is None, f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        scheme = celery_app.conf.broker_url.split("://", 1)[0]
        assert f"Connected to {scheme}://" in log.read_text(), "the worker uses the broker this process sends to"
        return queue, log

    try:
        yield start
    finally:
        celery_app.conf.update(saved)
        for proc in started:
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with celery_app.connection_for_write() as conn:
            for name in worker_queues(queue):
                try:
                    with conn.channel() as channel:
                        channel.queue_delete(queue=name)
                except Exception:  # never declared
                    pass
        connection.close()


@pytest.fixture
def worker(start_worker) -> tuple[str, Path]:
    """A worker on every group's queue, as `make worker` runs."""
    return start_worker()


def test_task_sent_through_redis_runs_on_the_worker_and_writes_to_postgres(worker):
    queue, log = worker
    worker_heartbeat.delay()
    wait_for(lambda: WorkerHeartbeat.objects.filter(worker__startswith=queue).exists(), 60, "the heartbeat row", log)


def test_domain_event_goes_from_the_outbox_through_redis_to_a_worker_consumer(worker):
    _, log = worker
    user = user_register(email="New.Customer@Example.com", password="a-long-enough-passphrase")

    deliveries = Delivery.objects.using(db_for_module("accounts"))
    delivery = deliveries.get(event_name="accounts.user.registered.v1", payload__user_id=user.id)
    assert delivery.consumer == "accounts.send_welcome_email"
    wait_for(
        lambda: deliveries.filter(pk=delivery.pk, status="done").exists(),
        60,
        "the worker to apply the event",
        log,
    )
    assert "Welcome to" in log.read_text(), "the welcome email was sent by the worker (console backend)"


def test_the_worker_keeps_its_database_connection_from_one_task_to_the_next(worker):
    """Like a web process between requests: no new PostgreSQL connection (a backend process each) per task."""
    queue, log = worker

    def others() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {row[0] for row in cursor.fetchall()}

    def last_beat():
        return WorkerHeartbeat.objects.filter(worker__startswith=queue).values_list("seen_at", flat=True).first()

    seen = []
    for _ in range(3):
        before = last_beat()
        worker_heartbeat.delay()
        wait_for(lambda before=before: last_beat() not in (None, before), 60, "the heartbeat", log)
        seen.append(others())
    assert seen[0], "the worker's connection stays open after its task"
    assert seen[0] == seen[1] == seen[2], "and the next tasks use the same connection"


def test_account_deletion_reaches_orders_and_shop_through_the_worker_and_every_delivery_ends_done(worker):
    """accounts.user.deleted.v1 has two idempotent subscribers: shop's (inline, in this process) and orders' (a task
    on the worker). The event is delivered once both are done, whichever process ran each."""
    from accounts.services import user_delete
    from catalog.models import Variant
    from orders.models import Order
    from orders.services import order_place
    from shop.models import CartLine
    from tests.factories import UserFactory, make_category, make_product

    _, log = worker
    variant = make_product("Lamp", make_category("Home"), variants=[{"price": "20.00", "stock": 3}]).variants.get()
    user = UserFactory(email="grace@example.com")
    address = {"full_name": "Grace Hopper", "line1": "1 Navy Way", "postal_code": "10001", "city": "New York",
               "country": "US"}  # fmt: skip
    order = order_place(idempotency_key="grace-1", lines=[(variant.pk, 1)], shipping_method="standard",
                        shipping_address=address, email=user.email, user_id=user.pk)  # fmt: skip
    CartLine.objects.create(user_id=user.pk, variant_id=Variant.objects.get().pk, quantity=1, price_seen="20.00")

    user_delete(user_id=user.pk)

    deliveries = Delivery.objects.using(db_for_module("accounts")).filter(event_name="accounts.user.deleted.v1")
    assert {d.consumer for d in deliveries} >= {"orders.anonymise_orders", "shop.drop_cart_of_deleted_user"}
    wait_for(lambda: not deliveries.exclude(status="done").exists(), 60, "every subscriber to apply it", log)
    row = Order.objects.get(number=order.number)
    assert row.user_id is None
    assert "grace" not in row.email
    assert "Grace" not in str(row.shipping_address)
    assert not CartLine.objects.filter(user_id=user.pk).exists()


def test_a_worker_on_one_group_takes_that_groups_tasks_and_another_groups_task_waits(start_worker):
    """The welcome email goes to the email queue, the heartbeat to the events queue: a worker on email alone
    sends the email and leaves the heartbeat waiting in its queue."""
    queue, log = start_worker(groups=["email"])
    worker_heartbeat.delay()  # sent first: had the worker listened on its queue, it would run before the email
    user = user_register(email="only.email@example.com", password="a-long-enough-passphrase")

    deliveries = Delivery.objects.using(db_for_module("accounts"))
    delivery = deliveries.get(event_name="accounts.user.registered.v1", payload__user_id=user.id)
    wait_for(lambda: deliveries.filter(pk=delivery.pk, status="done").exists(), 60, "the email worker", log)
    assert "Welcome to" in log.read_text()
    assert not WorkerHeartbeat.objects.filter(worker__startswith=queue).exists()
    assert waiting(f"{queue}.events") == 1, "the heartbeat waits in the events queue"
    assert waiting(f"{queue}.email") == 0

    start_worker(groups=["events"])  # a worker for the events group takes it
    wait_for(lambda: WorkerHeartbeat.objects.filter(worker__startswith=queue).exists(), 60, "the heartbeat", log)


def test_a_task_failing_every_try_is_retried_then_recorded_dead_once_and_the_admin_sends_it_again(worker, admin_client):
    from tests.worker_tasks import always_fails

    _, log = worker
    always_fails.delay("NW-DEAD1", reason="the carrier is down")
    wait_for(lambda: DeadTask.objects.filter(name="tests.always_fails").exists(), 60, "the dead task row", log)
    time.sleep(1.5)  # a retry sent by mistake after the last try would land by now
    row = DeadTask.objects.get(name="tests.always_fails")
    assert (row.args, row.kwargs, row.attempts, row.status) == (["NW-DEAD1"], {"reason": "the carrier is down"}, 3,
                                                                 "dead")  # fmt: skip
    assert row.error == "RuntimeError: NW-DEAD1: the carrier is down"
    assert "RuntimeError" in row.traceback
    assert log.read_text().count("Retry in 1s") == 2, "two retries after the first try, then dead"

    response = admin_client.post(
        "/admin/kernel/deadtask/", {"action": "retry", "_selected_action": [row.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "1 task(s) sent again." in response.content.decode()
    row.refresh_from_db()
    assert row.status == "retried"
    assert row.retried_at is not None
    wait_for(lambda: DeadTask.objects.filter(name="tests.always_fails").count() == 2, 60, "the retried task", log)
    again = DeadTask.objects.exclude(pk=row.pk).get()
    assert (again.args, again.kwargs, again.attempts, again.status) == (row.args, row.kwargs, 3, "dead")
