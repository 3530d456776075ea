"""Public face of webhooks: outgoing webhooks to integrators' endpoints, per the Standard Webhooks specification.

An endpoint is a URL with the event types it wants (none named: all of them) and a signing secret, shown once
when the endpoint is made or its secret rotated. For each event of those types webhooks makes one message per
active endpoint and POSTs it: a JSON body {"type", "timestamp", "data"} with the headers webhook-id (msg_...,
the same on every try of the message), webhook-timestamp (the try's, in Unix seconds) and webhook-signature
("v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per active secret, space-separated: two during a rotation).

Event types (EVENT_TYPES): order.created, order.paid, order.shipped, order.delivered, order.cancelled,
order.refunded, return.received, stock.low (a variant's available stock fell to WEBHOOKS_STOCK_LOW_THRESHOLD or
below it from above it), product.updated; and webhook.test, sent to one endpoint by endpoint_ping.

Delivery is at least once: an answer 2xx delivers a message; anything else (another status, a timeout, a
connection error) is tried again with exponential back-off and jitter for WEBHOOKS_RETRY_FOR_SECONDS (3 days),
then the message has failed. A receiver may get a message more than once (its answer was lost, or came after the
timeout): it deduplicates on webhook-id. A 410 Gone disables the endpoint at once, and so do failures only
(no 2xx) for WEBHOOKS_DISABLE_AFTER_SECONDS (5 days); staff are emailed. See webhooks.delivery for how a try is
claimed and what a killed worker leaves.

Ordering: messages are not guaranteed to arrive in the order their events happened, not even for one resource (an
order.paid may arrive before its order.created when the first try of order.created failed). Each payload carries
the event's "timestamp" (when it happened) and the resource's ids in "data" (order_id and number, product_id,
variant_id): a receiver orders by them, and can fetch the resource's current state when it needs it. data's
snapshot is read when webhooks handles the event, which may be a little after it.

Functions are keyword-only and return frozen dataclasses. They raise WebhookError subclasses: EndpointNotFound,
MessageNotFound, InvalidEndpoint, EndpointDisabled, MessageInFlight.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from kernel.db import atomic, unique
from webhooks import delivery, payloads
from webhooks.models import Attempt, Endpoint, EndpointSecret, Message

EVENT_TYPES = payloads.EVENT_TYPES
TEST_EVENT_TYPE = payloads.TEST
MessageStatus = Message.Status  # public: compare against these, never strings
AttemptOutcome = Attempt.Outcome


class WebhookError(Exception):
    """Base of the exceptions webhooks raises."""


class EndpointNotFound(WebhookError):
    pass


class MessageNotFound(WebhookError):
    pass


class InvalidEndpoint(WebhookError, ValueError):
    """A URL or an event type that is refused; the message says which and why."""


class EndpointDisabled(WebhookError):
    """The endpoint is disabled: enable it first."""


class MessageInFlight(WebhookError):
    """A try of this message is in flight: replay it once that ends."""


# ---------------------------------------------------------------- what the functions return


@dataclass(frozen=True)
class EndpointInfo:
    id: int
    url: str
    description: str
    event_types: tuple[str, ...]  # empty: every type
    is_active: bool
    disabled_at: datetime | None
    disabled_reason: str
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    owner_key_id: int | None = None  # the API key that made it; None: staff


@dataclass(frozen=True)
class EndpointCreated:
    endpoint: EndpointInfo
    secret: str  # shown this once: never returned again


@dataclass(frozen=True)
class SecretRotated:
    endpoint_id: int
    secret: str  # the new secret, shown this once
    previous_expires_at: datetime  # until then the previous secret signs too


@dataclass(frozen=True)
class MessageInfo:
    id: int
    webhook_id: str
    endpoint_id: int
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    deliver_until: datetime
    delivered_at: datetime | None
    last_error: str
    created_at: datetime


@dataclass(frozen=True)
class AttemptInfo:
    id: int
    message_id: int
    number: int
    at: datetime
    outcome: str
    status_code: int | None
    latency_ms: int | None
    error: str
    response_body: str


@dataclass(frozen=True)
class DeliveryResult:
    message_id: int
    outcome: str  # "delivered", "retry", "failed", or "skipped: <why>"


ENDPOINT_FIELDS = ("pk", "url", "description", "event_types", "is_active", "disabled_at", "disabled_reason",
                   "failing_since", "created_at", "updated_at", "owner_key_id")  # fmt: skip


def _endpoint_info(row: tuple) -> EndpointInfo:
    pk, url, description, types, active, disabled_at, reason, failing_since, created_at, updated_at, owner = row
    return EndpointInfo(pk, url, description, tuple(types or ()), active, disabled_at, reason, failing_since,
                        created_at, updated_at, owner)  # fmt: skip


def _message_info(m: Message) -> MessageInfo:
    return MessageInfo(m.pk, m.webhook_id, m.endpoint_id, m.event_type, m.payload, m.status, m.attempts,
                       m.next_attempt_at, m.deliver_until, m.delivered_at, m.last_error, m.created_at)  # fmt: skip


def _attempt_info(a: Attempt) -> AttemptInfo:
    return AttemptInfo(a.pk, a.message_id, a.number, a.at, a.outcome, a.status_code, a.latency_ms, a.error,
                       a.response_body)  # fmt: skip


# ---------------------------------------------------------------- checking what callers give

_url_validator = URLValidator(schemes=["http", "https"])


def endpoint_url_check(*, url: str) -> str:
    """The URL as an endpoint would keep it, or InvalidEndpoint saying why it is refused (forms check with it)."""
    return _clean_url(url)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    try:
        _url_validator(url)
    except ValidationError:
        raise InvalidEndpoint(f"not an http(s) URL: {url!r}") from None
    if len(url) > Endpoint._meta.get_field("url").max_length:
        raise InvalidEndpoint("the URL is too long")
    parts = urlsplit(url)
    if settings.WEBHOOKS_REQUIRE_HTTPS and parts.scheme != "https":
        raise InvalidEndpoint("the URL must be https")
    if parts.username or parts.password:
        raise InvalidEndpoint("the URL may not carry a user name or password")
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        host = (parts.hostname or "").rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidEndpoint("the URL may not point at this machine")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise InvalidEndpoint("the URL may not point at a private, loopback or reserved address")
    return url


def _clean_types(event_types: Iterable[str]) -> list[str]:
    types = list(dict.fromkeys(t.strip() for t in event_types))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidEndpoint(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return types


# ---------------------------------------------------------------- endpoints


def endpoint_get(*, endpoint_id: int) -> EndpointInfo:
    row = unique(Endpoint.objects.filter(pk=endpoint_id).values_list(*ENDPOINT_FIELDS))
    if row is None:
        raise EndpointNotFound(endpoint_id)
    return _endpoint_info(row)


def endpoint_list(*, active: bool | None = None) -> tuple[EndpointInfo, ...]:
    rows = Endpoint.objects.order_by("id")
    if active is not None:
        rows = rows.filter(is_active=active)
    return tuple(_endpoint_info(row) for row in rows.values_list(*ENDPOINT_FIELDS))


def endpoint_create(*, url: str, description: str = "", event_types: Iterable[str] = (),
                    owner_key_id: int | None = None) -> EndpointCreated:  # fmt: skip
    """A new active endpoint with its signing secret, returned this once. owner_key_id: the API key that made it
    (the API shows a key only its own endpoints); None for staff. Raises InvalidEndpoint."""
    url, types = _clean_url(url), _clean_types(event_types)
    secret = delivery.new_secret()
    with atomic(module="webhooks"):
        endpoint = Endpoint.objects.create(url=url, description=description.strip()[:200], event_types=types,
                                           owner_key_id=owner_key_id)  # fmt: skip
        EndpointSecret.objects.create(endpoint=endpoint, secret=secret)
    return EndpointCreated(endpoint_get(endpoint_id=endpoint.pk), secret)


def endpoint_update(*, endpoint_id: int, url: str | None = None, description: str | None = None,
                    event_types: Iterable[str] | None = None) -> EndpointInfo:  # fmt: skip
    """Change what is given (None: unchanged). Raises EndpointNotFound, InvalidEndpoint."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = _clean_url(url)
    if description is not None:
        changes["description"] = description.strip()[:200]
    if event_types is not None:
        changes["event_types"] = _clean_types(event_types)
    with atomic(module="webhooks"):
        endpoint = unique(Endpoint.objects.select_for_update().filter(pk=endpoint_id))
        if endpoint is None:
            raise EndpointNotFound(endpoint_id)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
    return endpoint_get(endpoint_id=endpoint_id)


def endpoint_delete(*, endpoint_id: int) -> None:
    """Delete an endpoint with its secrets, messages and their tries. Raises EndpointNotFound."""
    with atomic(module="webhooks"):
        deleted, _ = Endpoint.objects.filter(pk=endpoint_id).delete()
    if not deleted:
        raise EndpointNotFound(endpoint_id)


def endpoint_rotate_secret(*, endpoint_id: int, grace_seconds: int | None = None) -> SecretRotated:
    """A new signing secret, returned this once. The current one keeps signing for grace_seconds
    (WEBHOOKS_SECRET_GRACE_SECONDS by default), so requests carry two signatures meanwhile and a receiver can
    switch without losing any. Raises EndpointNotFound."""
    now = timezone.now()
    grace = settings.WEBHOOKS_SECRET_GRACE_SECONDS if grace_seconds is None else max(grace_seconds, 0)
    expires = now + timedelta(seconds=grace)
    secret = delivery.new_secret()
    with atomic(module="webhooks"):
        if not Endpoint.objects.select_for_update().filter(pk=endpoint_id).exists():
            raise EndpointNotFound(endpoint_id)
        EndpointSecret.objects.filter(endpoint_id=endpoint_id, expires_at__lte=now).delete()
        EndpointSecret.objects.filter(endpoint_id=endpoint_id, expires_at__isnull=True).update(expires_at=expires)
        EndpointSecret.objects.filter(endpoint_id=endpoint_id, expires_at__gt=expires).update(expires_at=expires)
        EndpointSecret.objects.create(endpoint_id=endpoint_id, secret=secret, created_at=now)
    return SecretRotated(endpoint_id, secret, expires)


def endpoint_enable(*, endpoint_id: int) -> EndpointInfo:
    """Enable a disabled endpoint: its waiting messages are due again (the next run of webhooks.send_due sends
    them; those past their retry window get one try). Raises EndpointNotFound."""
    now = timezone.now()
    with atomic(module="webhooks"):
        if not Endpoint.objects.filter(pk=endpoint_id).update(
            is_active=True, disabled_at=None, disabled_reason="", failing_since=None, updated_at=now
        ):
            raise EndpointNotFound(endpoint_id)
        Message.objects.filter(endpoint_id=endpoint_id, status=MessageStatus.PENDING).update(
            next_attempt_at=now, queued_until=None
        )
    return endpoint_get(endpoint_id=endpoint_id)


def endpoint_disable(*, endpoint_id: int, reason: str = "disabled by staff") -> EndpointInfo:
    """Stop sending to an endpoint (its messages wait); staff are emailed. Raises EndpointNotFound."""
    endpoint_get(endpoint_id=endpoint_id)
    delivery.endpoint_disable(endpoint_id, reason=reason)
    return endpoint_get(endpoint_id=endpoint_id)


def endpoint_ping(*, endpoint_id: int) -> MessageInfo:
    """Send a webhook.test message to one endpoint now, through the same pipeline as events (signed, logged,
    retried). Raises EndpointNotFound, EndpointDisabled."""
    endpoint = endpoint_get(endpoint_id=endpoint_id)
    if not endpoint.is_active:
        raise EndpointDisabled(endpoint_id)
    now = timezone.now()
    [message_id] = delivery.messages_create(event_type=TEST_EVENT_TYPE, source_event_id=uuid.uuid4(),
                                            payload=payloads.ping_payload(endpoint_id, now),
                                            endpoint_ids=[endpoint_id], now=now)  # fmt: skip
    return message_get(message_id=message_id)


# ---------------------------------------------------------------- messages


def message_get(*, message_id: int) -> MessageInfo:
    message = unique(Message.objects.filter(pk=message_id))
    if message is None:
        raise MessageNotFound(message_id)
    return _message_info(message)


def message_list(*, endpoint_id: int, status: str | None = None, event_type: str | None = None,
                 before_id: int | None = None, limit: int = 50) -> tuple[MessageInfo, ...]:  # fmt: skip
    """An endpoint's messages, newest first; before_id pages on (the messages older than that one). Raises
    EndpointNotFound."""
    endpoint_get(endpoint_id=endpoint_id)
    rows = Message.objects.filter(endpoint_id=endpoint_id).order_by("-id")
    if status:
        rows = rows.filter(status=status)
    if event_type:
        rows = rows.filter(event_type=event_type)
    if before_id is not None:
        rows = rows.filter(pk__lt=before_id)
    return tuple(_message_info(m) for m in rows[: max(min(limit, 500), 1)])


def message_attempts(*, message_id: int) -> tuple[AttemptInfo, ...]:
    """The tries of a message, the first first. Raises MessageNotFound."""
    if not Message.objects.filter(pk=message_id).exists():
        raise MessageNotFound(message_id)
    return tuple(_attempt_info(a) for a in Attempt.objects.filter(message_id=message_id).order_by("number"))


def _send_again(message_id: int, *, delivered_too: bool) -> bool:
    now = timezone.now()
    with atomic(module="webhooks") as alias:
        message = unique(Message.objects.select_for_update(of=("self",)).select_related("endpoint")
                         .filter(pk=message_id))  # fmt: skip
        if message is None:
            raise MessageNotFound(message_id)
        if message.status == MessageStatus.DELIVERED and not delivered_too:
            return False
        if not message.endpoint.is_active:
            raise EndpointDisabled(message.endpoint_id)
        if message.locked_until and message.locked_until > now:
            raise MessageInFlight(message_id)
        Message.objects.filter(pk=message_id).update(
            status=MessageStatus.PENDING, next_attempt_at=now, queued_until=now + delivery.requeue_after(),
            deliver_until=max(message.deliver_until, now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)),
            delivered_at=None, updated_at=now,
        )  # fmt: skip
        transaction.on_commit(partial(delivery.enqueue, [message_id]), using=alias, robust=True)
    return True


def message_replay(*, message_id: int) -> MessageInfo:
    """Send a message again, whatever its status (a receiver lost it, or was fixed): a new try now, with the same
    webhook-id and body, and a fresh retry window. Raises MessageNotFound, EndpointDisabled, MessageInFlight."""
    _send_again(message_id, delivered_too=True)
    return message_get(message_id=message_id)


def messages_retry(*, message_ids: Iterable[int]) -> int:
    """Try pending and failed messages now (a fresh retry window for failed ones); delivered ones, and those of a
    disabled endpoint or with a try in flight, are left as they are. Returns how many will be tried."""
    retried = 0
    for message_id in message_ids:
        try:
            retried += _send_again(message_id, delivered_too=False)
        except (EndpointDisabled, MessageInFlight, MessageNotFound):
            continue
    return retried


def messages_due(*, now: datetime | None = None, limit: int = 1000) -> tuple[int, ...]:
    """Ids of the messages whose next try is due (pending, of an active endpoint, not held by a try)."""
    return tuple(delivery.due(now=now or timezone.now(), limit=limit))


def messages_send_due(*, now: datetime | None = None) -> int:
    """What the periodic job webhooks.send_due does: a delivery task for every due message. Returns how many."""
    return delivery.send_due(now=now)


def deliver(*, message_id: int, now: datetime | None = None) -> DeliveryResult:
    """One try of a message, here and now, if it is due and no other try holds it (what the delivery task does).
    `now` fixes the clock of the schedule (tests)."""
    return DeliveryResult(message_id, delivery.deliver(message_id, now=now))


__all__ = [
    "EVENT_TYPES",
    "TEST_EVENT_TYPE",
    "AttemptInfo",
    "AttemptOutcome",
    "DeliveryResult",
    "EndpointCreated",
    "EndpointDisabled",
    "EndpointInfo",
    "EndpointNotFound",
    "InvalidEndpoint",
    "MessageInFlight",
    "MessageInfo",
    "MessageNotFound",
    "MessageStatus",
    "SecretRotated",
    "WebhookError",
    "deliver",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_disable",
    "endpoint_enable",
    "endpoint_get",
    "endpoint_list",
    "endpoint_ping",
    "endpoint_rotate_secret",
    "endpoint_update",
    "endpoint_url_check",
    "message_attempts",
    "message_get",
    "message_list",
    "message_replay",
    "messages_due",
    "messages_retry",
    "messages_send_due",
]
