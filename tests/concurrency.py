"""Real threads racing for the same thing, for the concurrency tests (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def race(
    attempt: Callable[[int], str], *, threads: int = 20, refusals: tuple[type[BaseException], ...] = (), timeout=120
) -> list[str]:
    """Run attempt(0..threads-1) in that many threads released at once by a barrier. Each outcome is what attempt
    returns, the message of one of `refusals` it raised, or "error: Type: message" for anything else. Every
    thread closes its database connections; the race must end within `timeout` seconds (no deadlock)."""
    outcomes: list[str] = []
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes.append(attempt(i))
        except refusals as exc:
            outcomes.append(str(exc))
        except BaseException as exc:
            outcomes.append(f"error: {type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(timeout)
    assert not any(t.is_alive() for t in started), "no deadlock"
    return outcomes
