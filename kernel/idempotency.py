"""Idempotency keys for the REST API: a POST sent again with the same Idempotency-Key gets the first answer.

    outcome = idempotency_begin(principal="key:7", key="9f1c...", fingerprint=sha256(method, path, body))
    if outcome.replay: answer with outcome.replay            # the stored status, body and headers
    ... run the request ...
    idempotency_finish(record_id=outcome.record_id, status_code=201, body=b"...", content_type=..., headers=...)

Keys are per principal (an API key or a staff user), kept for IDEMPOTENCY_TTL (24 hours). The same key with a
different request is refused (KeyReused, 422); a second request while the first is still running is refused
(RequestInProgress, 409) rather than run twice. A request whose process died before its answer was stored leaves
the key in progress: after IDEMPOTENCY_LEASE it is taken over and the request runs again (the actions behind the
API are state transitions, so running one again answers 409, it does not do it twice). An answer that says
nothing about the request itself (401, 403, 429, 5xx) is not stored: the client may try again with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from kernel.models import IdempotentRequest

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_LEASE = timedelta(seconds=60)
ALIAS = "default"


class IdempotencyError(Exception):
    """Base of the idempotency refusals."""


class KeyReused(IdempotencyError):
    """The key was used for a different request."""


class RequestInProgress(IdempotencyError):
    """A request with this key is still running."""


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    record_id: int | None  # the request should run and then call idempotency_finish with this id
    replay: Replay | None  # the request ran before: answer with this


def idempotency_begin(*, principal: str, key: str, fingerprint: str, now: datetime | None = None) -> Outcome:
    now = now or timezone.now()
    for _ in range(3):
        try:
            with transaction.atomic(using=ALIAS):
                record = IdempotentRequest.objects.using(ALIAS).create(
                    principal=principal, key=key, fingerprint=fingerprint, started_at=now
                )
            return Outcome(record.pk, None)
        except IntegrityError:
            pass
        with transaction.atomic(using=ALIAS):
            record = (
                IdempotentRequest.objects.using(ALIAS).select_for_update().filter(principal=principal, key=key).first()
            )
            if record is None:
                continue  # purged in between: insert again
            if record.started_at <= now - IDEMPOTENCY_TTL:
                record.delete()  # an expired key is a new key
                continue
            if record.fingerprint != fingerprint:
                raise KeyReused(key)
            if record.completed_at is not None:
                return Outcome(
                    None, Replay(record.status_code or 200, bytes(record.body), record.content_type, record.headers)
                )
            if record.started_at > now - IDEMPOTENCY_LEASE:
                raise RequestInProgress(key)
            record.started_at = now  # the first try died before it answered: this one takes over
            record.save(update_fields=["started_at"])
            return Outcome(record.pk, None)
    raise RequestInProgress(key)


def idempotency_finish(
    *, record_id: int, status_code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    IdempotentRequest.objects.using(ALIAS).filter(pk=record_id).update(
        completed_at=timezone.now(),
        status_code=status_code,
        body=body,
        content_type=content_type,
        headers=headers or {},
    )


def idempotency_release(*, record_id: int) -> None:
    """Forget a key whose answer is not to be kept (401, 403, 429, 5xx): the client may try again with it."""
    IdempotentRequest.objects.using(ALIAS).filter(pk=record_id, completed_at__isnull=True).delete()


def idempotency_purge(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    deleted, _ = IdempotentRequest.objects.using(ALIAS).filter(started_at__lt=now - IDEMPOTENCY_TTL).delete()
    return deleted
