"""Slowing down password guessing without letting anyone lock a member out.

A failed sign-in counts against the pair (account, client address) and against
the address alone. Each counter allows a few free failures, then asks for a wait
that doubles with every further failure, up to a cap; a success clears its pair.
Nothing counts against an account as such: an attacker elsewhere, however many
attempts they make, only slows themselves down, and the member signs in from
their own address as usual. The per-address counter stops one address from
spraying guesses over many accounts.

The client address is the connection's peer unless that peer is a configured
trusted proxy; then it is read from X-Forwarded-For, right to left, skipping
trusted proxies (what the client writes into the header itself is never
reached). IPv6 clients are counted per /64, which is what one household or
server usually holds.

Counters live in memory, per process, in two bounded LRU tables whose entries
are forgotten an hour after their last failure. Behind several processes each
keeps its own counts, which still caps the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

from aiohttp import web

from node.config import ProxyNetwork

MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Backoff:
    """`free` failures cost nothing; the next waits `first` seconds, doubling up to `cap`."""

    free: int
    first: float
    cap: float

    def wait_after(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.first * 2 ** (failures - self.free)))


PAIR_BACKOFF = Backoff(free=5, first=2.0, cap=900.0)
ADDRESS_BACKOFF = Backoff(free=50, first=2.0, cap=900.0)
FORGET_AFTER = 3600.0
MAX_TRACKED = 20_000  # per table: a few MB at most


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: whose account, from which address (None when unknown)."""

    account: str
    address: str | None

    @property
    def pair(self) -> str:
        return f"{self.account}|{self.address or '?'}"


@dataclass
class _Counter:
    failures: int
    last_failure: float


class _BoundedCounters:
    """Failure counters that expire, in an LRU of bounded size."""

    def __init__(self, backoff: Backoff, max_size: int, clock: Callable[[], float]) -> None:
        self.backoff = backoff
        self.max_size = max_size
        self._clock = clock
        self._items: OrderedDict[str, _Counter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def _get(self, key: str) -> _Counter | None:
        counter = self._items.get(key)
        if counter is not None and self._clock() - counter.last_failure > FORGET_AFTER:
            del self._items[key]
            return None
        return counter

    def wait(self, key: str) -> float:
        counter = self._get(key)
        if counter is None:
            return 0.0
        due = counter.last_failure + self.backoff.wait_after(counter.failures)
        return max(0.0, due - self._clock())

    def fail(self, key: str) -> None:
        counter = self._get(key)
        now = self._clock()
        if counter is None:
            self._items[key] = _Counter(1, now)
        else:
            counter.failures += 1
            counter.last_failure = now
            self._items.move_to_end(key)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def clear(self, key: str) -> None:
        self._items.pop(key, None)


def _parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IPv4Address | IPv6Address, proxies: Sequence[ProxyNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted_proxies: Sequence[ProxyNetwork]
) -> str | None:
    """The address of whoever is signing in, as far as this node can trust it.

    X-Forwarded-For lists addresses left to right, each proxy appending the peer
    it saw. Walking from the right, the first address not a trusted proxy is
    the client; anything further left was written by the client and is ignored.
    A peer that is not a trusted proxy is the client, whatever it claims.
    """
    current = _parse_ip(peer) if peer else None
    if current is None:
        return peer or None
    if not _trusted(current, trusted_proxies):
        return str(current)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:  # a trusted proxy wrote nonsense: stop at what it is
            break
        current = address
        if not _trusted(address, trusted_proxies):
            break
    return str(current)


def address_key(address: str) -> str:
    """IPv6 clients are counted per /64: one host usually holds all of one."""
    parsed = _parse_ip(address)
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is None:
        return str(IPv6Network(f"{parsed}/64", strict=False))
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address[:64]


@dataclass
class LoginThrottle:
    trusted_proxies: Sequence[ProxyNetwork] = ()
    clock: Callable[[], float] = time.monotonic
    max_tracked: int = MAX_TRACKED
    _pairs: _BoundedCounters = field(init=False)
    _addresses: _BoundedCounters = field(init=False)

    def __post_init__(self) -> None:
        self._pairs = _BoundedCounters(PAIR_BACKOFF, self.max_tracked, self.clock)
        self._addresses = _BoundedCounters(ADDRESS_BACKOFF, self.max_tracked, self.clock)

    def attempt(
        self, community: str, username: str, peer: str | None, forwarded_for: Sequence[str]
    ) -> Attempt:
        # Both parts are cut short: keys must stay small, whatever a client sends.
        name = username.strip().lower()[:MAX_NAME_LENGTH]
        account = f"{community[:MAX_NAME_LENGTH]}:{name}"
        address = client_address(peer, forwarded_for, self.trusted_proxies)
        return Attempt(account, address_key(address) if address else None)

    def retry_after(self, attempt: Attempt) -> int | None:
        """Seconds until this attempt may be checked, or None when it may be now."""
        wait = self._pairs.wait(attempt.pair)
        if attempt.address:
            wait = max(wait, self._addresses.wait(attempt.address))
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, attempt: Attempt) -> None:
        self._pairs.fail(attempt.pair)
        if attempt.address:
            self._addresses.fail(attempt.address)

    def succeeded(self, attempt: Attempt) -> None:
        """The member is who they said: their own address starts afresh for them."""
        self._pairs.clear(attempt.pair)

    @property
    def tracked(self) -> int:
        return len(self._pairs) + len(self._addresses)


LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
"""The app's one throttle, shared by the sign-in page and the token endpoint."""
