"""A least-recently-stored cache bounded by entry count and by bytes.

Every per-process cache on the request path is one of these, so no client-chosen key
can grow memory past a fixed budget: the oldest entries go first when either bound is
reached. Sizes are the caller's estimate of what an entry retains (keys included).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What a dict slot, a key tuple and a small object cost beyond their payload, roughly.
ENTRY_OVERHEAD_BYTES = 200


class BoundedLru(Generic[K, V]):
    """`get`/`put`/`pop` over an insertion-ordered dict, evicting the oldest past a bound."""

    __slots__ = ("_bytes", "_entries", "max_bytes", "max_entries")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a bounded cache needs room for at least one entry")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes the entries retain now."""
        return self._bytes

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        return None if hit is None else hit[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Store `value` (estimated `size` bytes, overhead added here), evicting as needed."""
        size += ENTRY_OVERHEAD_BYTES
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if size > self.max_bytes:
            return  # larger than the whole budget: not worth keeping
        self._entries[key] = (value, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    def pop(self, key: K) -> V | None:
        old = self._entries.pop(key, None)
        if old is None:
            return None
        self._bytes -= old[1]
        return old[0]

    def oldest(self) -> tuple[K, V] | None:
        """The entry stored longest ago, if any."""
        for key, (value, _) in self._entries.items():
            return key, value
        return None

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
