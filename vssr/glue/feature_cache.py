"""A bounded, thread-safe, single-flight cache of per-source-frame results (RIFE's encoder
features, EDVR's level-1 features).

Several streams ask for the same source frame at about the same time (it is the right frame of one
pair and the left frame of the next; the same frame sits in T EDVR windows). Single flight: the
first asker computes, the others wait for its result instead of computing it again, and askers of
other keys are never blocked by a computation. A failed computation is handed to everyone who
waited for it and is not cached: the next asker computes again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future

__all__ = ["FeatureCache"]


class FeatureCache[K: Hashable, V]:
    """At most `capacity` results, least recently used evicted first; at most one computation per
    key in flight."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._pending: dict[K, Future[V]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value of `key`, else the one being computed by another thread, else
        `compute()`'s (run in this thread, outside the lock). Its exception reaches every waiter."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            future = self._pending.get(key)
            owner = future is None
            if future is None:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()  # another stream is computing it
        try:
            value = compute()
        except BaseException as err:
            with self._lock:
                del self._pending[key]
            future.set_exception(err)
            raise
        with self._lock:
            del self._pending[key]
            self._entries[key] = value
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        future.set_result(value)
        return value
