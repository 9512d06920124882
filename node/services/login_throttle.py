"""Slowing down password guessing: failed sign-ins counted per account and per address.

Kept in memory, per process: it bounds guessing from one attacker against one
node process, which is what a small community's node faces. Behind several
processes each keeps its own count, which still caps the rate.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 50
WINDOW_SECONDS = 300.0


@dataclass
class LoginThrottle:
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    @staticmethod
    def keys(community: str, username: str, address: str | None) -> dict[str, int]:
        """The counters one attempt touches, with the limit of each."""
        keys = {f"account:{community}:{username.strip().lower()}": ACCOUNT_LIMIT}
        if address:
            keys[f"address:{address}"] = ADDRESS_LIMIT
        return keys

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def retry_after(self, keys: dict[str, int]) -> int | None:
        """Seconds until another attempt is allowed, or None when it is allowed now."""
        waits = []
        for key, limit in keys.items():
            failures = self._recent(key)
            if len(failures) >= limit:
                waits.append(failures[len(failures) - limit] + self.window - self.clock())
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            self._failures[key].append(now)

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key.startswith("account:"):
                self._failures.pop(key, None)
