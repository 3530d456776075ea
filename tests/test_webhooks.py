"""Outgoing webhooks: a real HTTP receiver on 127.0.0.1 that checks every request's signature with the
standardwebhooks package (not the shop's code) and records what it got; orders, stock and products changed through
their modules' services; a real Celery worker killed in the middle of a request."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from catalog.events import StockChanged
from catalog.services import refresh_products, stock_set
from orders import services as orders
from tests.factories import StaffFactory, make_category, make_product
from tests.test_orders import pay, place
from tests.test_worker import wait_for
from tests.test_worker_failures import workers  # noqa: F401 (a fixture)
from webhooks import delivery, handlers, services
from webhooks.models import Attempt, Endpoint, Message

pytestmark = [pytest.mark.modules, pytest.mark.django_db]


# ---------------------------------------------------------------- the receiver


@dataclass
class Received:
    webhook_id: str
    timestamp: str
    signatures: list[str]
    verified: list[bool]  # one per secret the receiver knows, checked by standardwebhooks
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    answered: int | None = None  # the status it answered (None: it dropped the connection)


@dataclass
class Receiver:
    """An integrator's endpoint. `script`: what to do with each next request ({"status": 500}, {"sleep": 1.5},
    {"block": threading.Event} to hold the request until the event is set, then drop it); then `default`."""

    url: str = ""
    secrets: list[str] = field(default_factory=list)
    script: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] = field(default_factory=lambda: {"status": 200})
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    busy: int = 0  # requests being answered now

    def settle(self, timeout: float = 10) -> None:
        """Wait until every request it is answering has had its answer (one that slept past the sender's timeout)."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.busy, "the receiver is still answering"

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.requests]

    def acknowledged(self) -> list[Received]:
        """The requests it answered 2xx (the sender may still have given up on one: see the timeout tests)."""
        return [r for r in self.requests if r.answered and 200 <= r.answered < 300]

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.body.get("type") == event_type]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            verified = []
            for secret in receiver.secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(True)
                except WebhookVerificationError:
                    verified.append(False)
            with receiver.lock:
                receiver.busy += 1
                action = receiver.script.pop(0) if receiver.script else receiver.default
                got = Received(self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", ""),
                               self.headers.get("webhook-signature", "").split(" "), verified, json.loads(body), body,
                               {k.lower(): v for k, v in headers.items()})  # fmt: skip
                receiver.requests.append(got)
            try:
                if "block" in action:
                    action["block"].wait(90)
                    self.close_connection = True
                    return  # no answer: the connection is dropped
                time.sleep(action.get("sleep", 0))
                status = action.get("status", 200)
                got.answered = status
                reply = action.get("body", "ok").encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except OSError:  # the sender gave up (its timeout) and closed the connection
                pass
            finally:
                with receiver.lock:
                    receiver.busy -= 1

    return Handler


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOKS_REQUIRE_HTTPS = False
    settings.WEBHOOKS_TIMEOUT_SECONDS = 1
    got = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(got))
    server.daemon_threads = True
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/shop"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block's on-commit callbacks (event delivery, then webhooks' delivery tasks) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def kettle():
    variants = [{"options": {"Colour": "Copper"}, "price": "30.00", "stock": 20}]
    return make_product("Copper Kettle", make_category("Kitchen"), variants=variants).variants.get()


def subscribe(receiver: Receiver, *types: str) -> int:
    created = services.endpoint_create(url=receiver.url, description="ERP", event_types=types)
    receiver.secrets.append(created.secret)
    return created.endpoint.id


def only_message(**lookup) -> Message:
    return Message.objects.get(**lookup)


def staff_notices() -> list:
    return [m for m in mail.outbox if "webhook endpoint disabled" in m.subject]


def outcomes(message: Message) -> list[tuple[str, int | None]]:
    return [(a.outcome, a.status_code) for a in Attempt.objects.filter(message=message).order_by("number")]


# ---------------------------------------------------------------- (a) once acknowledged, duplicates share the id


def test_an_event_is_acknowledged_once_and_its_retries_after_a_500_and_a_timeout_carry_the_same_webhook_id(
    receiver, kettle, committed
):
    subscribe(receiver, "order.created")
    receiver.script = [{"status": 500}, {"sleep": 1.5, "status": 200}]  # then 200
    with committed():
        order = place(kettle, key="wh-a")

    message = only_message(event_type="order.created")
    assert message.status == "pending"
    assert outcomes(message) == [("failed", 500)]
    with committed():
        assert services.messages_send_due(now=message.next_attempt_at) == 1  # the receiver answers too late
    message.refresh_from_db()
    assert message.status == "pending"
    with committed():
        assert services.messages_send_due(now=message.next_attempt_at) == 1
    message.refresh_from_db()
    assert message.status == "delivered"
    with committed():
        assert services.messages_send_due(now=timezone.now() + timedelta(days=4)) == 0, "never sent again"

    assert [(a.outcome, a.status_code) for a in Attempt.objects.order_by("number")] == [
        ("failed", 500), ("failed", None), ("succeeded", 200)
    ]  # fmt: skip
    assert "no answer within 1 s" in Attempt.objects.get(number=2).error
    assert receiver.ids() == [message.webhook_id] * 3, "every try of the message carries its webhook-id"
    assert message.webhook_id.startswith("msg_")
    assert all(all(r.verified) for r in receiver.requests)
    receiver.settle()
    assert [r.answered for r in receiver.requests] == [500, 200, 200], "it answered the second one too late"
    assert len({r.webhook_id for r in receiver.acknowledged()}) == 1, "deduplicating on webhook-id, it has it once"
    assert Attempt.objects.filter(outcome="succeeded").count() == 1, "the shop counts one acknowledged delivery"
    body = receiver.requests[-1].body
    assert body["type"] == "order.created"
    assert body["data"]["number"] == order.number
    headers = receiver.requests[-1].headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].endswith("-Webhooks/1.0")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60, "the try's own time, in Unix seconds"


def test_the_same_event_twice_makes_one_message_per_wanting_endpoint_and_none_for_others(receiver, kettle, committed):
    wants_all = subscribe(receiver)
    wants_paid = subscribe(receiver, "order.paid")
    subscribe(receiver, "stock.low")
    disabled = subscribe(receiver, "order.paid")
    Endpoint.objects.filter(pk=disabled).update(is_active=False)
    with committed():
        order = place(kettle, key="wh-twice")
        pay(order)
    paid = Message.objects.filter(event_type="order.paid")
    assert sorted(paid.values_list("endpoint_id", flat=True)) == sorted([wants_all, wants_paid])

    from orders.events import OrderPaid

    first = paid.first()
    again = OrderPaid(event_id=first.source_event_id, order_id=order.id, number=order.number)
    with committed():
        handlers.order_paid(again)
        handlers.order_paid(again)
    assert paid.count() == 2, "the same event again creates nothing"
    assert len(receiver.of_type("order.paid")) == 2, "and sends nothing again"


# ---------------------------------------------------------------- (b) slower than the timeout


def test_a_receiver_slower_than_the_timeout_is_tried_again_and_gets_the_event(receiver, kettle, committed):
    subscribe(receiver, "product.updated")
    receiver.script = [{"sleep": 1.6, "status": 200}]
    with committed():
        refresh_products(product_ids=[kettle.product_id])
    message = only_message(event_type="product.updated")
    assert message.status == "pending"
    [first] = Attempt.objects.filter(message=message)
    assert (first.outcome, first.status_code) == ("failed", None)
    assert 900 <= first.latency_ms < 1600

    with committed():
        services.messages_send_due(now=message.next_attempt_at)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert outcomes(message) == [("failed", None), ("succeeded", 200)]
    data = receiver.requests[-1].body["data"]
    assert data["product_id"] == kettle.product_id
    assert data["product"]["slug"] == "copper-kettle"
    assert data["product"]["variants"][0]["price"] == "30.00", "Decimals as strings"


# ---------------------------------------------------------------- (c) a worker killed in the middle of a request


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_a_request_is_replaced_and_the_periodic_job_delivers_the_event_once(
    workers,  # noqa: F811
    receiver,
):
    from webhooks.tasks import send_due

    group = workers(WEBHOOKS_TIMEOUT_SECONDS="2", WEBHOOKS_LEASE_SECONDS="5", WEBHOOKS_ALLOW_PRIVATE_URLS="1",
                    WEBHOOKS_REQUIRE_HTTPS="0")  # fmt: skip
    subscribe(receiver, "order.created")
    release = threading.Event()
    receiver.script = [{"block": release}]
    first, log = group.start()
    lamp = make_product("Lamp", make_category("Home"), variants=[{"price": "40.00", "stock": 9}]).variants.get()
    order = place(lamp, key="wh-killed")  # OrderPlaced -> the broker -> the worker: a message, then its try

    wait_for(lambda: len(receiver.requests) == 1, 60, "the first try to reach the receiver", log)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    release.set()
    message = only_message(event_type="order.created")
    assert (message.status, message.attempts) == ("pending", 1)
    assert outcomes(message) == [("in_flight", None)], "the killed try never recorded its outcome"

    _, log = group.start()
    wait_for(lambda: timezone.now() > message.locked_until, 30, "the killed try's lease to pass", log)
    send_due.delay()
    wait_for(lambda: Message.objects.filter(pk=message.pk, status="delivered").exists(), 60, "the delivery", log)
    send_due.delay()  # nothing left to do
    time.sleep(2)

    assert outcomes(message) == [("lost", None), ("succeeded", 200)]
    assert receiver.ids() == [message.webhook_id] * 2
    assert [r.answered for r in receiver.requests] == [None, 200]
    assert len(receiver.acknowledged()) == 1, "delivered exactly once acknowledged"
    assert all(all(r.verified) for r in receiver.requests)
    assert receiver.requests[-1].body["data"]["number"] == order.number
    connection.close()


# ---------------------------------------------------------------- (i) two tries at once


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_one_message_at_once_send_it_once(receiver, monkeypatch):
    endpoint = subscribe(receiver, "stock.low")
    monkeypatch.setattr(delivery, "enqueue", lambda ids, **kw: None)  # no try on commit: the two below race
    [message_id] = delivery.messages_create(event_type="stock.low", source_event_id=__import__("uuid").uuid4(),
                                            payload={"type": "stock.low"}, endpoint_ids=[endpoint])  # fmt: skip
    receiver.script = [{"sleep": 0.5, "status": 204}]
    start = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(services.deliver(message_id=message_id).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["delivered", "skipped: a try is in flight"]
    assert len(receiver.requests) == 1
    assert services.deliver(message_id=message_id).outcome == "skipped: delivered", "never sent again"
    assert len(receiver.requests) == 1


# ---------------------------------------------------------------- (d) 410 Gone, and failing for days


def test_410_gone_disables_the_endpoint_at_once_and_emails_staff_and_it_gets_no_new_messages(
    receiver, kettle, committed
):
    StaffFactory(email="ops@example.com")
    StaffFactory(email="gone@example.com", is_active=False)
    endpoint = subscribe(receiver, "order.created", "order.paid")
    receiver.script = [{"status": 410}]
    with committed():
        order = place(kettle, key="wh-gone")
    message = only_message(event_type="order.created")
    assert message.status == "failed", "a 410 is not retried"
    info = services.endpoint_get(endpoint_id=endpoint)
    assert not info.is_active
    assert info.disabled_at is not None
    assert "410" in info.disabled_reason
    [notice] = staff_notices()
    assert notice.to == ["ops@example.com"]
    assert receiver.url in notice.subject
    assert "410" in notice.body

    with committed():
        pay(order)
    assert not Message.objects.filter(event_type="order.paid").exists(), "a disabled endpoint gets no new messages"
    with pytest.raises(services.EndpointDisabled):
        services.endpoint_ping(endpoint_id=endpoint)

    assert services.endpoint_enable(endpoint_id=endpoint).is_active
    with committed():
        ping = services.endpoint_ping(endpoint_id=endpoint)
    assert services.message_get(message_id=ping.id).status == "delivered"
    assert receiver.requests[-1].body["type"] == "webhook.test"
    assert len(staff_notices()) == 1


def test_an_endpoint_whose_every_try_failed_for_five_days_is_disabled_and_a_success_resets_the_clock(
    receiver, committed, settings
):
    StaffFactory(email="ops@example.com")
    endpoint = subscribe(receiver)
    receiver.default = {"status": 503}
    with committed():
        services.endpoint_ping(endpoint_id=endpoint)
    failing_since = Endpoint.objects.get().failing_since
    assert failing_since is not None
    assert services.endpoint_get(endpoint_id=endpoint).is_active, "one failure is not enough"

    receiver.default = {"status": 200}
    with committed():
        services.endpoint_ping(endpoint_id=endpoint)
    assert Endpoint.objects.get().failing_since is None, "a 2xx: not failing any more"

    receiver.default = {"status": 503}
    Endpoint.objects.update(failing_since=timezone.now() - timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS))
    with committed():
        services.endpoint_ping(endpoint_id=endpoint)
    info = services.endpoint_get(endpoint_id=endpoint)
    assert not info.is_active
    assert info.disabled_reason.startswith("every try has failed since")
    assert len(staff_notices()) == 1


# ---------------------------------------------------------------- (e) secret rotation


def test_during_a_rotation_requests_carry_two_signatures_and_both_secrets_verify(receiver, committed):
    endpoint = subscribe(receiver)
    old = receiver.secrets[0]
    rotated = services.endpoint_rotate_secret(endpoint_id=endpoint)
    assert rotated.secret != old
    assert rotated.secret.startswith("whsec_")
    receiver.secrets.append(rotated.secret)
    with committed():
        services.endpoint_ping(endpoint_id=endpoint)
    got = receiver.requests[-1]
    assert len(got.signatures) == 2
    assert all(s.startswith("v1,") for s in got.signatures)
    assert got.verified == [True, True], "the old and the new secret each verify"
    for secret in (old, rotated.secret):  # each secret alone, as a receiver knowing only one would check
        Webhook(secret).verify(got.raw, got.headers)

    services.endpoint_rotate_secret(endpoint_id=endpoint, grace_seconds=0)  # the previous one stops at once
    with committed():
        services.endpoint_ping(endpoint_id=endpoint)
    assert len(receiver.requests[-1].signatures) == 1
    assert receiver.requests[-1].verified == [False, False], "neither earlier secret signs any more"


def test_secrets_follow_the_standard_webhooks_format_and_are_shown_only_at_creation(receiver):
    import base64

    created = services.endpoint_create(url=receiver.url)
    assert created.secret.startswith("whsec_")
    assert len(base64.b64decode(created.secret.removeprefix("whsec_"))) >= 24
    assert created.secret not in repr(services.endpoint_get(endpoint_id=created.endpoint.id))
    assert created.secret not in repr(services.endpoint_list())


# ---------------------------------------------------------------- (f) back-off


def test_back_off_grows_exponentially_with_jitter_up_to_its_cap():
    assert [delivery.retry_ceiling(n) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert delivery.retry_ceiling(30) == 6 * 60 * 60
    for tries in (1, 4, 9, 20):
        delays = {delivery.retry_delay(tries).total_seconds() for _ in range(200)}
        assert all(1 <= d <= delivery.retry_ceiling(tries) for d in delays)
        assert len(delays) > 50, "full jitter: spread over the whole range"


def test_retries_back_off_and_stop_three_days_after_the_message_was_made(receiver, committed, monkeypatch, settings):
    monkeypatch.setattr(delivery, "jitter", lambda: 1.0)  # the longest wait each time
    endpoint = subscribe(receiver)
    receiver.default = {"status": 500}
    with committed():
        ping = services.endpoint_ping(endpoint_id=endpoint)
    message = Message.objects.get(pk=ping.id)
    deadline = message.created_at + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)
    assert message.deliver_until == deadline
    first = Attempt.objects.get(message=message).at
    assert timedelta(seconds=5) <= message.next_attempt_at - first < timedelta(seconds=6), "5 s after the first"
    tries = []
    while message.status == "pending":
        now = message.next_attempt_at
        assert services.deliver(message_id=message.pk, now=now).outcome in ("retry", "failed")
        tries.append(now)
        message.refresh_from_db()
        assert len(tries) < 60

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    assert gaps[:4] == [10, 20, 40, 80]
    assert all(b >= a for a, b in itertools.pairwise(gaps[:-1])), "the waits grow (the last is cut at the deadline)"
    assert max(gaps) == 6 * 60 * 60, "up to the cap"
    assert tries[-1] == deadline, "the last try is three days after the message was made"
    assert message.status == "failed"
    assert message.attempts == len(tries) + 1 == len(receiver.requests)
    assert services.deliver(message_id=message.pk, now=deadline + timedelta(days=1)).outcome == "skipped: failed"
    assert len(set(receiver.ids())) == 1


# ---------------------------------------------------------------- (g) orders through the real services


def test_an_order_placed_paid_and_shipped_makes_created_paid_and_shipped_messages_with_its_data(
    receiver, kettle, committed
):
    subscribe(receiver, "order.created", "order.paid", "order.shipped")
    with committed():  # each step commits, and its events are handled, before the next
        order = place(kettle, 2, key="wh-g")
    with committed():
        pay(order)
    with committed():
        orders.order_ship(number=order.number, actor="staff:1")

    messages = list(Message.objects.order_by("id"))
    assert [m.event_type for m in messages] == ["order.created", "order.paid", "order.shipped"]
    assert {m.status for m in messages} == {"delivered"}
    assert [r.body["type"] for r in receiver.requests] == ["order.created", "order.paid", "order.shipped"]
    assert len(set(receiver.ids())) == 3
    assert all(all(r.verified) for r in receiver.requests)
    statuses = []
    for got in receiver.requests:
        assert set(got.body) == {"type", "timestamp", "data"}
        data = got.body["data"]
        assert (data["order_id"], data["number"]) == (order.id, order.number)
        snapshot = data["order"]
        assert (snapshot["id"], snapshot["number"]) == (order.id, order.number)
        assert (snapshot["total"], snapshot["currency"]) == ("60.00", "EUR")
        assert snapshot["email"] == "ada@example.com"
        line = snapshot["lines"][0]
        assert (line["sku"], line["quantity"], line["unit_price"], line["product_id"]) == (
            kettle.sku, 2, "30.00", kettle.product_id
        )  # fmt: skip
        assert "access_token" not in snapshot, "the guest's key to the order page is not sent"
        assert got.body["timestamp"].endswith("Z")
        statuses.append(snapshot["status"])
    assert statuses == ["pending_payment", "paid", "shipped"], "each snapshot read when its event was handled"
    shipped = receiver.of_type("order.shipped")[0].body["data"]["order"]
    assert shipped["shipments"][0]["status"] == "shipped"
    stamps = [r.body["timestamp"] for r in receiver.requests]
    assert stamps == sorted(stamps), "the events' own times, which order them"


# ---------------------------------------------------------------- (h) stock.low


def test_stock_low_fires_once_when_stock_crosses_the_threshold_and_not_again_while_it_stays_below(
    receiver, committed, settings
):
    settings.WEBHOOKS_STOCK_LOW_THRESHOLD = 5
    subscribe(receiver, "stock.low")
    variant = make_product("Mug", make_category("Kitchen"), variants=[{"price": "8.00", "stock": 8}]).variants.get()
    for level in (7, 6, 5, 3, 0, 4):
        with committed():
            stock_set(sku=variant.sku, on_hand=level)
    assert Message.objects.filter(event_type="stock.low").count() == 1
    [got] = receiver.requests
    data = got.body["data"]
    assert (data["variant_id"], data["sku"], data["available"], data["available_before"], data["threshold"]) == (
        variant.pk, variant.sku, 5, 6, 5
    )  # fmt: skip
    assert data["product_id"] == variant.product_id
    assert data["variant"]["price"] == "8.00"

    with committed():
        stock_set(sku=variant.sku, on_hand=9)  # above again
        stock_set(sku=variant.sku, on_hand=2)  # and below: a new crossing
    assert Message.objects.filter(event_type="stock.low").count() == 2
    unknown = StockChanged(variant_id=variant.pk, sku=variant.sku, product_id=variant.product_id,
                           product_slug="mug", available=1, available_before=None)  # fmt: skip
    with committed():
        handlers.stock_low(unknown)
    assert Message.objects.filter(event_type="stock.low").count() == 3, "an unknown level before counts as crossing"


# ---------------------------------------------------------------- the rest of the services


def test_replay_sends_a_delivered_message_again_with_the_same_webhook_id_and_body(receiver, committed):
    endpoint = subscribe(receiver)
    with committed():
        ping = services.endpoint_ping(endpoint_id=endpoint)
    assert services.message_get(message_id=ping.id).status == "delivered"
    assert services.messages_retry(message_ids=[ping.id]) == 0, "retry leaves a delivered message alone"
    with committed():
        replayed = services.message_replay(message_id=ping.id)
    assert replayed.webhook_id == ping.webhook_id
    assert services.message_get(message_id=ping.id).status == "delivered"
    assert receiver.ids() == [ping.webhook_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert [a.number for a in services.message_attempts(message_id=ping.id)] == [1, 2]


def test_a_failed_message_is_retried_from_staffs_retry_with_a_fresh_window(receiver, committed):
    endpoint = subscribe(receiver)
    receiver.script = [{"status": 500}]
    with committed():
        ping = services.endpoint_ping(endpoint_id=endpoint)
    Message.objects.filter(pk=ping.id).update(status="failed")
    with committed():
        assert services.messages_retry(message_ids=[ping.id]) == 1
    message = services.message_get(message_id=ping.id)
    assert message.status == "delivered"
    assert message.deliver_until > timezone.now() + timedelta(days=2)


def test_endpoint_urls_and_event_types_are_checked(settings):
    settings.WEBHOOKS_REQUIRE_HTTPS = True
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    refused = (
        "ftp://example.com/x",
        "not a url",
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://u:p@example.com/",
    )
    for url in refused:
        with pytest.raises(services.InvalidEndpoint):
            services.endpoint_create(url=url)
    with pytest.raises(services.InvalidEndpoint, match="unknown event type"):
        services.endpoint_create(url="https://example.com/hook", event_types=["order.exploded"])
    created = services.endpoint_create(url="https://example.com/hook", event_types=["order.paid", "order.paid"])
    assert created.endpoint.event_types == ("order.paid",)
    updated = services.endpoint_update(endpoint_id=created.endpoint.id, description="Books", event_types=[])
    assert (updated.description, updated.event_types, updated.url) == ("Books", (), "https://example.com/hook")
    services.endpoint_delete(endpoint_id=created.endpoint.id)
    with pytest.raises(services.EndpointNotFound):
        services.endpoint_get(endpoint_id=created.endpoint.id)


def test_every_event_type_has_its_subscriber_on_the_webhooks_queue():
    """Async on the webhooks queue, but for stock.low: every sale changes stock, so its check (arithmetic on the
    event) runs inline in the seller's process rather than as a task per sale."""
    from kernel import bus
    from webhooks.payloads import SOURCES

    for event_type, event in SOURCES.items():
        subs = {s.key: s for s in bus.subscriptions(event.name)}
        sub = subs[f"webhooks.{event_type.replace('.', '_')}"]
        mode = "inline" if event_type == "stock.low" else "async"
        assert (sub.queue, sub.idempotent, sub.mode) == ("webhooks", True, mode)


# ---------------------------------------------------------------- the admin


def test_the_admin_shows_the_secret_once_and_messages_with_their_tries_and_replays_through_services(
    receiver, admin_client, django_capture_on_commit_callbacks
):
    response = admin_client.post(
        "/admin/webhooks/endpoint/add/",
        {"url": receiver.url, "description": "Warehouse", "event_types": ["order.paid", "stock.low"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = Endpoint.objects.get()
    secret = endpoint.secrets.get().secret
    assert secret in response.content.decode(), "shown once, on creation"
    assert endpoint.event_types == ["order.paid", "stock.low"]
    page = admin_client.get(f"/admin/webhooks/endpoint/{endpoint.pk}/change/").content.decode()
    assert secret not in page
    receiver.secrets.append(secret)

    receiver.script = [{"status": 502, "body": "bad gateway"}]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/webhooks/endpoint/", {"action": "ping", "_selected_action": [endpoint.pk]}, follow=True
        )
    assert response.status_code == 200
    message = Message.objects.get()
    page = admin_client.get(f"/admin/webhooks/message/{message.pk}/change/").content.decode()
    assert "502" in page, "its tries, inline"
    assert "bad gateway" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/webhooks/message/{message.pk}/replay/", follow=True)
    assert response.status_code == 200
    assert Message.objects.get().status == "delivered"
    assert receiver.ids() == [message.webhook_id] * 2

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/webhooks/message/", {"action": "replay", "_selected_action": [message.pk]})
    assert len(receiver.requests) == 3

    services.endpoint_disable(endpoint_id=endpoint.pk, reason="testing")
    admin_client.post("/admin/webhooks/endpoint/", {"action": "enable", "_selected_action": [endpoint.pk]})
    assert Endpoint.objects.get().is_active
    response = admin_client.post(
        "/admin/webhooks/endpoint/", {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True
    )
    new = Endpoint.objects.get().secrets.filter(expires_at__isnull=True).get().secret
    assert new != secret
    assert new in response.content.decode()
