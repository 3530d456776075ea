"""Sending messages: make them, claim one try, POST it signed, record the outcome; the retry schedule; disabling.

A try is claimed under the message's row lock: it counts the try, writes its Attempt row (in flight) and holds
the message for WEBHOOKS_LEASE_SECONDS (locked_until, lock_token). The HTTP request runs outside any transaction;
its outcome is recorded in a second one. So two workers never send the same try at once (the second finds the
lease taken), a delivered message is never sent again (only a pending one is claimed), and a worker killed in
the middle of a request leaves the message pending: webhooks.send_due takes it again once the lease has passed,
and marks the dead try's Attempt row lost. The lease outlasts the longest request (connect and read timeouts),
and the delivery task's time limits end a try before the lease does.

Retries: after a failed try (any answer but 2xx, a timeout, a connection error) the next one is due after an
exponential back-off with full jitter: a random delay between 1 s and min(WEBHOOKS_RETRY_MAX_DELAY_SECONDS,
WEBHOOKS_RETRY_BASE_SECONDS * 2 ** (tries - 1)). No try is made after deliver_until (created +
WEBHOOKS_RETRY_FOR_SECONDS): the last one is at that moment at the latest, and if it fails the message has failed.

Disabling: a 410 Gone disables the endpoint at once (and fails that message). An endpoint whose every try has
failed for WEBHOOKS_DISABLE_AFTER_SECONDS (failing_since, reset by any 2xx) is disabled at its next failed try.
Staff are emailed when an endpoint is disabled. A disabled endpoint gets no new messages and its pending ones
wait; enabling it makes them due again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import staff_emails
from kernel.celery import WEBHOOKS, queue_name
from kernel.db import atomic, unique
from webhooks.models import Attempt, Endpoint, EndpointSecret, Message

logger = logging.getLogger(__name__)

DELIVER = "webhooks.deliver"  # the task (webhooks.tasks) is found by name: it imports this module
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = 32
BODY_EXCERPT_BYTES = 1024
LOST = "the worker stopped before the try finished (its lease expired)"
PENDING, DELIVERED, FAILED = Message.Status.PENDING, Message.Status.DELIVERED, Message.Status.FAILED

jitter = random.random  # the random factor of the back-off; tests pin it


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes one: "whsec_" + base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' v1 signature: base64 of HMAC-SHA256("<id>.<timestamp>.<body>") keyed by the secret's
    bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent: the same on every try (keys sorted, as the database may store them in any order)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)


def requeue_after() -> timedelta:
    """A message a delivery task was sent for is not sent again by the periodic job before this."""
    return timedelta(seconds=max(5 * 60, settings.WEBHOOKS_LEASE_SECONDS))


# ---------------------------------------------------------------- the retry schedule


def retry_ceiling(tries: int) -> float:
    """The longest wait, in seconds, after `tries` failed tries."""
    exponent = min(max(tries - 1, 0), 40)
    return float(min(settings.WEBHOOKS_RETRY_MAX_DELAY_SECONDS, settings.WEBHOOKS_RETRY_BASE_SECONDS * 2**exponent))


def retry_delay(tries: int) -> timedelta:
    """Full jitter: a random wait up to the ceiling (at least a second)."""
    return timedelta(seconds=max(1.0, jitter() * retry_ceiling(tries)))


def next_try_at(*, tries: int, now: datetime, deliver_until: datetime) -> datetime | None:
    """When to try again after `tries` failed tries, the last at `now`; None: no more tries, the message failed."""
    if now >= deliver_until:
        return None
    return min(now + retry_delay(tries), deliver_until)


# ---------------------------------------------------------------- making messages


def messages_create(*, event_type: str, source_event_id: uuid.UUID, payload: dict[str, Any],
                    endpoint_ids: list[int], now: datetime | None = None) -> list[int]:  # fmt: skip
    """One message per endpoint for this event (none for an endpoint that has one already), in webhooks' own
    transaction; a delivery task for each new one once it commits. Returns the ids of the messages never tried."""
    if not endpoint_ids:
        return []
    now = now or timezone.now()
    until = now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)
    with atomic(module="webhooks") as alias:
        rows = [
            Message(webhook_id=new_webhook_id(), endpoint_id=endpoint_id, source_event_id=source_event_id,
                    event_type=event_type, payload=payload, next_attempt_at=now, deliver_until=until,
                    queued_until=now + requeue_after(), created_at=now)
            for endpoint_id in endpoint_ids
        ]  # fmt: skip
        Message.objects.bulk_create(rows, ignore_conflicts=True)  # the same event again: nothing new
        untried = Message.objects.filter(source_event_id=source_event_id, endpoint_id__in=endpoint_ids,
                                         status=PENDING, attempts=0)  # fmt: skip
        fresh = list(untried.values_list("pk", flat=True))
        transaction.on_commit(partial(enqueue, fresh), using=alias, robust=True)
    return fresh


def enqueue(message_ids: list[int], *, now: datetime | None = None) -> None:
    """A delivery task per message, on the webhooks queue (run here without a broker). A message whose task
    could not be sent (broker down) is left to the periodic job. `now`: the tasks' clock (tests)."""
    task = current_app.tasks[DELIVER]
    kwargs = {"now": now.isoformat()} if now else {}
    for message_id in message_ids:
        try:
            task.apply_async((message_id,), kwargs, queue=queue_name(WEBHOOKS))
        except Exception as exc:
            logger.warning("could not queue webhook message %s: %s", message_id, exc)
            Message.objects.filter(pk=message_id).update(queued_until=None)


# ---------------------------------------------------------------- one try


@dataclass(frozen=True)
class Claim:
    message_id: int
    webhook_id: str
    endpoint_id: int
    url: str
    body: bytes
    secrets: tuple[str, ...]
    attempt_id: int
    number: int
    token: uuid.UUID


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no answer (timeout, connection refused, ...)
    latency_ms: int
    error: str
    body: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def active_secrets(endpoint_id: int, now: datetime) -> tuple[str, ...]:
    rows = EndpointSecret.objects.filter(endpoint_id=endpoint_id).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    return tuple(rows.order_by("-created_at", "-id").values_list("secret", flat=True))


def claim(message_id: int, now: datetime) -> Claim | str:
    """Take the next try of a message if it is pending, due and not held by another try. Returns the claim, or
    why not (a string)."""
    with atomic(module="webhooks"):
        message = unique(Message.objects.select_for_update(of=("self",)).select_related("endpoint")
                         .filter(pk=message_id))  # fmt: skip
        if message is None:
            return "gone"
        if message.status != PENDING:
            return str(message.status)
        if message.next_attempt_at > now:
            return "not due"
        if message.locked_until and message.locked_until > now:
            return "a try is in flight"
        if not message.endpoint.is_active:
            return "endpoint disabled"
        keys = active_secrets(message.endpoint_id, now)
        if not keys:
            return "endpoint has no secret"
        Attempt.objects.filter(message_id=message_id, outcome=Attempt.Outcome.IN_FLIGHT).update(
            outcome=Attempt.Outcome.LOST, error=LOST
        )
        message.attempts += 1
        message.locked_until = now + lease()
        message.lock_token = uuid.uuid4()
        message.queued_until = None
        message.save(update_fields=["attempts", "locked_until", "lock_token", "queued_until", "updated_at"])
        attempt = Attempt.objects.create(message_id=message_id, number=message.attempts, at=now)
    return Claim(message.pk, message.webhook_id, message.endpoint_id, message.endpoint.url, body_of(message.payload),
                 keys, attempt.pk, message.attempts, message.lock_token)  # fmt: skip


def post(claim: Claim) -> Answer:
    """The HTTP request, signed with every active secret. Never raises: a failure is an Answer without a status."""
    timestamp = int(time.time())  # the moment of this try (receivers refuse old ones), not the event's
    headers = {
        "webhook-id": claim.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, claim.webhook_id, timestamp, claim.body) for key in claim.secrets),
        "Content-Type": "application/json",
        "User-Agent": settings.WEBHOOKS_USER_AGENT,
    }
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    proxies = {"http": settings.WEBHOOKS_PROXY, "https": settings.WEBHOOKS_PROXY} if settings.WEBHOOKS_PROXY else {}
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    refused = None if settings.WEBHOOKS_ALLOW_PRIVATE_URLS or proxies else private_address(claim.url)
    if refused:
        return Answer(None, elapsed(), f"not sent: {refused}", "")
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment: only WEBHOOKS_PROXY
    try:
        with session.post(claim.url, data=claim.body, headers=headers, timeout=(timeout, timeout),
                          allow_redirects=False, stream=True, proxies=proxies) as response:  # fmt: skip
            status = response.status_code
            try:
                excerpt = response.raw.read(BODY_EXCERPT_BYTES, decode_content=True) or b""
            except Exception:  # the status is what counts; the body is only shown in the admin
                excerpt = b""
    except requests.Timeout:
        return Answer(None, elapsed(), f"no answer within {timeout} s", "")
    except Exception as exc:  # connection refused, TLS, DNS, a bad URL, the task's soft time limit
        return Answer(None, elapsed(), f"{type(exc).__name__}: {exc}"[:2000], "")
    finally:
        session.close()
    text = excerpt.decode("utf-8", "replace")
    return Answer(status, elapsed(), "" if 200 <= status < 300 else f"HTTP {status}", text)


def private_address(url: str) -> str | None:
    """Why the URL's host must not be sent to, if it resolves to an address that is not public (loopback,
    private, link-local such as a cloud's metadata service, reserved): an endpoint's URL is an integrator's to
    choose, and its answers are shown to them. Resolved just before each try; a name that changes its answer
    between this lookup and the connection's (DNS rebinding) is the residual risk: WEBHOOKS_PROXY, an egress proxy
    that refuses internal addresses, closes it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)  # fmt: skip
    except (OSError, UnicodeError) as exc:
        return f"{host} does not resolve ({exc})"
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not address.is_global:
            return f"{host} resolves to {address}, which is not a public address"
    return None


def record(claim: Claim, answer: Answer, now: datetime) -> str:
    """Write the try's outcome and what follows: delivered, a retry, failed, the endpoint disabled. Returns
    "delivered", "retry" or "failed"."""
    with atomic(module="webhooks"):
        Attempt.objects.filter(pk=claim.attempt_id).update(
            outcome=Attempt.Outcome.SUCCEEDED if answer.ok else Attempt.Outcome.FAILED,
            status_code=answer.status_code, latency_ms=answer.latency_ms, error=answer.error,
            response_body=answer.body,
        )  # fmt: skip
        pending = Message.objects.filter(pk=claim.message_id, status=PENDING)
        released = {"locked_until": None, "lock_token": None}
        if answer.ok:  # even if the lease had passed and another try was claimed meanwhile: the receiver has it
            pending.update(status=DELIVERED, delivered_at=now, last_error="", **released)
            Endpoint.objects.filter(pk=claim.endpoint_id, failing_since__isnull=False).update(failing_since=None)
            return "delivered"
        if answer.status_code == 410:
            pending.update(status=FAILED, last_error="410 Gone: the endpoint was disabled", **released)
            endpoint_disable(claim.endpoint_id, reason=f"it answered 410 Gone ({now:%Y-%m-%d %H:%M} UTC)", now=now)
            return "failed"
        mine = pending.filter(lock_token=claim.token)  # a lease that passed belongs to the next try now
        deliver_until = Message.objects.filter(pk=claim.message_id).values_list("deliver_until", flat=True).get()
        when = next_try_at(tries=claim.number, now=now, deliver_until=deliver_until)
        if when is None:
            mine.update(status=FAILED, last_error=answer.error[:300], **released)
        else:
            mine.update(next_attempt_at=when, last_error=answer.error[:300], **released)
        _count_failure(claim.endpoint_id, now)
        return "failed" if when is None else "retry"


def _count_failure(endpoint_id: int, now: datetime) -> None:
    Endpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=now)
    since = Endpoint.objects.filter(pk=endpoint_id).values_list("failing_since", flat=True).get()
    if since <= now - timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS):
        endpoint_disable(endpoint_id, reason=f"every try has failed since {since:%Y-%m-%d %H:%M} UTC", now=now)


def deliver(message_id: int, *, now: datetime | None = None) -> str:
    """One try of a message, if it is due and nobody else is trying it: "delivered", "retry", "failed", or
    "skipped: <why>". `now` (tests): the clock of the claim and of the schedule."""
    taken = claim(message_id, now or timezone.now())
    if isinstance(taken, str):
        return f"skipped: {taken}"
    answer = post(taken)
    return record(taken, answer, now or timezone.now())


# ---------------------------------------------------------------- the periodic job


def due(*, now: datetime, limit: int = 1000) -> list[int]:
    """Pending messages of active endpoints whose next try is due, not held by a try, and with no delivery task
    on its way: the oldest due first."""
    rows = (
        Message.objects.filter(status=PENDING, next_attempt_at__lte=now, endpoint__is_active=True)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .filter(Q(queued_until__isnull=True) | Q(queued_until__lte=now))
        .order_by("next_attempt_at", "pk")
    )
    return list(rows.values_list("pk", flat=True)[:limit])


def send_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Send a delivery task for every due message (webhooks.send_due, on every beat tick). This is what retries
    failed tries and finishes those a killed worker or a broker outage left. Returns how many were sent."""
    clock = now or timezone.now()
    ids = due(now=clock, limit=limit)
    if ids:
        Message.objects.filter(pk__in=ids).update(queued_until=clock + requeue_after())
        enqueue(ids, now=now)
    return len(ids)


def purge(*, now: datetime | None = None) -> int:
    """Delete delivered and failed messages (with their tries) older than WEBHOOKS_RETENTION_DAYS, and secrets
    expired."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    with atomic(module="webhooks"):
        deleted = Message.objects.filter(status__in=[DELIVERED, FAILED], created_at__lt=cutoff).delete()[1]
        EndpointSecret.objects.filter(expires_at__lte=now).delete()
    return deleted.get(Message._meta.label, 0)


# ---------------------------------------------------------------- disabling


def endpoint_disable(endpoint_id: int, *, reason: str, now: datetime | None = None) -> bool:
    """Disable an active endpoint and, once that commits, email staff. True if this call disabled it."""
    now = now or timezone.now()
    with atomic(module="webhooks") as alias:
        changed = Endpoint.objects.filter(pk=endpoint_id, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason[:300]
        )
        if changed:
            logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
            transaction.on_commit(partial(notify_disabled, endpoint_id), using=alias, robust=True)
    return bool(changed)


def notify_disabled(endpoint_id: int) -> None:
    row = unique(Endpoint.objects.filter(pk=endpoint_id).values_list("url", "description", "disabled_reason"))
    if row is None:
        return
    url, description, reason = row
    recipients = list(staff_emails())
    if not recipients:
        logger.warning("webhook endpoint %s was disabled and no staff account has an email address", endpoint_id)
        return
    send_mail(
        subject=f"{settings.SHOP_NAME}: webhook endpoint disabled: {url}",
        message=(
            f"The webhook endpoint {url}{f' ({description})' if description else ''} was disabled: {reason}.\n\n"
            "It gets no new messages; those waiting are kept. Once the receiver works again, enable it in the "
            "admin (Webhooks > Endpoints) or through the API: the waiting messages are then sent.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
