"""Tasks for the tests of retries and dead tasks; the worker tests start their workers with --include of this."""

from __future__ import annotations

from kernel.celery import idempotent_task

tries: list[str] = []  # the arguments of each try made in this process
failing = {"flaky": True}


@idempotent_task(name="tests.always_fails", max_retries=2, retry_backoff=False, default_retry_delay=1)
def always_fails(order_number: str, *, reason: str) -> None:
    tries.append(order_number)
    raise RuntimeError(f"{order_number}: {reason}")


@idempotent_task(name="tests.flaky", max_retries=1)
def flaky(order_number: str) -> str:
    """Fails while failing["flaky"] is set."""
    tries.append(order_number)
    if failing["flaky"]:
        raise ConnectionError(f"{order_number}: the mail server does not answer")
    return order_number
