"""Per-host token buckets with bounded memory, for what remote servers may send us.

A remote server is limited as a whole (by host), not per actor: making up
actors costs an attacker nothing, making up hosts costs a domain each. The
buckets live in an LRU of fixed size, so a flood of hosts cannot grow memory;
a host that falls out of it simply starts again with a full bucket.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_HOSTS: Final = 10_000


@dataclass(frozen=True)
class Rate:
    """`burst` requests at once, refilled at `per_minute` a minute."""

    burst: int
    per_minute: float

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


class HostRateLimiter:
    """One token bucket per (kind, host); `kind` names a `Rate` ("follow", "activity").

    `wait_for` only looks, `take` spends: a caller can refuse cheaply before
    doing expensive work (fetching a key) and spend only once it knows who is
    asking, so that nobody can use up another host's budget in its name.
    """

    def __init__(
        self,
        rates: Mapping[str, Rate],
        *,
        max_hosts: int = DEFAULT_MAX_HOSTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rates = dict(rates)
        self.max_hosts = max_hosts
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def _level(self, kind: str, host: str) -> tuple[Rate, float, float]:
        """(rate, tokens now, now) for the bucket; a new bucket starts full."""
        rate = self.rates[kind]
        now = self._clock()
        tokens, at = self._buckets.get((kind, host), (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - at) * rate.per_second)
        return rate, tokens, now

    @staticmethod
    def _wait(rate: Rate, tokens: float) -> float:
        if tokens >= 1.0:
            return 0.0
        if rate.per_second <= 0:
            return math.inf
        return (1.0 - tokens) / rate.per_second

    def wait_for(self, kind: str, host: str) -> float:
        """Seconds until `host` may send one more `kind`; 0 when it may now."""
        if kind not in self.rates:
            return 0.0
        rate, tokens, _ = self._level(kind, host)
        return self._wait(rate, tokens)

    def take(self, kind: str, host: str) -> float:
        """Spend one token and return 0, or return the seconds until one is due."""
        if kind not in self.rates:
            return 0.0
        rate, tokens, now = self._level(kind, host)
        wait = self._wait(rate, tokens)
        if wait == 0.0:
            tokens -= 1.0
        key = (kind, host)
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_hosts:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, at least 1, at most a day."""
    if not math.isfinite(seconds):
        return str(24 * 3600)
    return str(min(24 * 3600, max(1, math.ceil(seconds))))


__all__ = ["HostRateLimiter", "Rate", "retry_after_header"]
