"""Request coalescing: concurrent identical queries share one upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


async def _await(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


class SingleFlight(Generic[K, T]):
    """While a call for a key is in flight, further calls for that key wait for its outcome.

    This spends Meta's rate budget once for N identical concurrent queries. The shared call
    runs as its own task: a waiter that is cancelled (say, its client disconnected) stops
    waiting, but the call goes on for the others. Once it completes, the next call for the
    key starts afresh; results are not cached here.

    The shared task runs in the context of the caller that started it (contextvars, such as
    a bound request id in logs, come from that first caller).
    """

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[T]] = {}
        self._started_total = 0
        self._joined_total = 0

    def in_flight(self, key: K) -> bool:
        """Whether a call for `key` is running now."""
        task = self._calls.get(key)
        return task is not None and not task.done()

    @property
    def in_flight_count(self) -> int:
        """How many keys have a call running now."""
        return sum(1 for task in self._calls.values() if not task.done())

    @property
    def started_total(self) -> int:
        """Calls of `fn` made since creation."""
        return self._started_total

    @property
    def joined_total(self) -> int:
        """Calls that waited for another caller's call instead of making their own."""
        return self._joined_total

    async def run(self, key: K, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`'s result or exception, shared with every concurrent call for `key`."""
        # shield: cancelling this waiter must not cancel the call the others are waiting for.
        return await asyncio.shield(self.join(key, fn))

    def join(self, key: K, fn: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The task of the call in flight for `key`, started now if there is none.

        Synchronous, so a caller that decided to call (say, after a cache miss) joins the
        call in flight at that very moment; await it through `asyncio.shield`.
        """
        task = self._calls.get(key)
        if task is None or task.done():
            task = asyncio.create_task(_await(fn), name=f"singleflight:{key!r}")
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
            self._started_total += 1
        else:
            self._joined_total += 1
        return task

    def _finished(self, key: K, task: asyncio.Task[T]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        # If every waiter was cancelled, nobody awaits the outcome; reading the exception
        # here keeps asyncio from reporting it as never retrieved.
        if not task.cancelled():
            task.exception()
