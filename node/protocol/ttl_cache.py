"""An expiring LRU for what the request path may cache but must not keep forever.

Public keys, the block list and local inbox slugs are read on every inbound
delivery; each is cached for seconds or minutes, so that accepting an activity
stays off the database without a stale answer outliving its time to live.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TtlCache(Generic[T]):
    """A small LRU whose entries expire: caches that must never hold a value forever."""

    def __init__(self, ttl: float, maxsize: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: T) -> None:
        self._items[key] = (self._clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)
