"""Public keys for inbound signatures: memory, then the actor cache, then the remote.

Split from `node.protocol.inbox` because resolving a key is its own job with
its own caches and network rules; the inbox only hands the resolver to
`federation.inbox.InboxReceiver`. Remote actors fetched for their key are
stored in `communities`, converted by `actor_to_data`.

Anyone can make us fetch a key: it takes one POST naming a keyId. So key
fetches are fenced off from everything else the node sends. They have their
own connection pool (a hanging key server cannot hold the connections
deliveries need), a short timeout, and a bounded number in flight, overall
and per host; past that a lookup is refused at once (`KeyLookupBusy`, which
the inbox answers with 503 and Retry-After) instead of queueing without
bound. Keys on blocked hosts are neither fetched nor trusted from the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from federation.errors import FederationError, FetchError
from federation.hosts import same_host, url_host
from federation.html_text import html_to_plain_text
from federation.http_client import HttpLimits, create_client_session, signed_get_json
from federation.jsonld import normalize_activity
from federation.signatures import KeyLookupBusy, PublicKeyRecord
from federation.vocab import ACTOR_TYPES, Actor, parse_actor
from node import __version__
from node.appkeys import CONFIG, SESSIONS
from node.config import NodeConfig
from node.protocol.ttl_cache import TtlCache
from storage.models import Community
from storage.repositories import CommunityRepository, RemoteActorRepository
from storage.repositories.actors import RemoteActorData


def actor_to_data(actor: Actor) -> RemoteActorData:
    """What we keep of a remote actor: its summary as plain text, nothing as HTML."""
    location = actor.location
    return RemoteActorData(
        ap_id=actor.id,
        actor_type=actor.type,
        inbox_url=actor.inbox,
        preferred_username=actor.preferred_username,
        name=actor.name,
        description=html_to_plain_text(actor.summary or ""),
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        shared_inbox_url=actor.shared_inbox,
        outbox_url=actor.outbox,
        followers_url=actor.followers,
        key_id=actor.public_key_id,
        public_key_pem=actor.public_key_pem,
        public_offer_count=actor.public_offer_count or 0,
        public_need_count=actor.public_need_count or 0,
        discoverable=actor.discoverable is True,
    )


@dataclass(frozen=True)
class KeyFetchLimits:
    """How much of the node anyone who names a keyId can occupy.

    A real key server answers in well under a second; `http.total_timeout`
    gives a slow one a few, and no more. `max_in_flight` and `max_per_host`
    bound how many fetches run at once; a lookup beyond them is refused and
    the sender told to retry after `retry_after` seconds.
    """

    max_in_flight: int = 16
    max_per_host: int = 2
    retry_after: float = 10.0
    http: HttpLimits = field(
        default_factory=lambda: HttpLimits(
            connect_timeout=3.0,
            total_timeout=5.0,
            max_response_bytes=512 * 1024,
            max_redirects=2,
        )
    )


class FetchSlots:
    """Non-blocking counters for fetches in flight, overall and per host."""

    def __init__(self, max_in_flight: int, max_per_host: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_per_host = max_per_host
        self._per_host: Counter[str] = Counter()

    @property
    def in_flight(self) -> int:
        return sum(self._per_host.values())

    def try_acquire(self, host: str) -> bool:
        if self.in_flight >= self.max_in_flight or self._per_host[host] >= self.max_per_host:
            return False
        self._per_host[host] += 1
        return True

    def release(self, host: str) -> None:
        self._per_host[host] -= 1
        if self._per_host[host] <= 0:
            del self._per_host[host]


def _record(community: Community) -> PublicKeyRecord | None:
    if not community.key_id or not community.public_key_pem:
        return None
    return PublicKeyRecord(community.key_id, community.ap_id, community.public_key_pem)


def _owner_of_key_document(document: Mapping[str, Any]) -> str | None:
    """The `owner` of a bare key document (some servers' keyId names one)."""
    if document.get("type") in ACTOR_TYPES or "publicKeyPem" not in document:
        return None
    owner = document.get("owner")
    owner = owner.get("id") if isinstance(owner, dict) else owner
    return owner if isinstance(owner, str) else None


class SqlKeyResolver:
    """`KeyResolver` for inbound signatures: memory, then the actor cache, then the remote.

    A key is fetched from its owner's actor document (signed with one of our
    community keys, as Mastodon's secure mode requires), and the actor is
    cached in `communities`. Failures are remembered for `failure_ttl`
    seconds only, so that a burst from a dead server costs one fetch and a
    server that comes back is heard again. A refresh (key rotation) goes to
    the network at most once per `refresh_interval` per key, so forged
    signatures cannot make us hammer someone else's server.

    `is_blocked(host)` is the node's block list; a key on a blocked host is
    unknown. The resolver's HTTP session is its own, opened on first use;
    `close()` it when the app stops.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        limits: KeyFetchLimits | None = None,
        is_blocked: Callable[[str], Awaitable[bool]] | None = None,
        memory_ttl: float = 600.0,
        failure_ttl: float = 30.0,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._limits = limits or KeyFetchLimits()
        self._slots = FetchSlots(self._limits.max_in_flight, self._limits.max_per_host)
        self._is_blocked = is_blocked
        self._http: aiohttp.ClientSession | None = None
        self._records = TtlCache[PublicKeyRecord](memory_ttl, 4096, clock)
        self._failures = TtlCache[str](failure_ttl, 4096, clock)
        self._refreshed = TtlCache[bool](refresh_interval, 4096, clock)
        self._inflight: dict[str, asyncio.Task[PublicKeyRecord | None]] = {}

    @property
    def _config(self) -> NodeConfig:
        return self._app[CONFIG]

    async def __call__(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        host = url_host(key_id)
        if host is None or (self._is_blocked is not None and await self._is_blocked(host)):
            return None
        return await (self._refresh(key_id) if refresh else self._lookup(key_id))

    async def close(self) -> None:
        """Close the key-fetch session (cleanup); a later fetch opens a new one."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = create_client_session(
                allow_private=self._config.allow_private_addresses,
                user_agent=f"CommonsNode/{__version__} (+{self._config.base_url})",
                limits=self._limits.http,
                max_connections=self._limits.max_in_flight,
                max_connections_per_host=self._limits.max_per_host,
            )
        return self._http

    async def _lookup(self, key_id: str) -> PublicKeyRecord | None:
        known = self._records.get(key_id)
        if known is not None:
            return known
        community = await self._stored(key_id)
        stored = _record(community) if community is not None else None
        if stored is not None:
            self._records.put(key_id, stored)
            return stored
        fetched = self._records.get(key_id)  # by a fetch that ended while we asked the DB
        if fetched is not None:
            return fetched
        failure = self._failures.get(key_id)
        if failure is not None:
            raise FetchError(f"recently failed, not retried yet: {failure}", url=key_id)
        return await self._fetch_once(key_id)

    async def _refresh(self, key_id: str) -> PublicKeyRecord | None:
        """After a failed check: the stored key if it is ours or just refreshed, else refetch."""
        community = await self._stored(key_id)
        stored = _record(community) if community is not None else None
        if stored is None:
            return await self._lookup(key_id)
        if (community is not None and community.is_local) or not self._may_refresh(key_id, stored):
            return stored
        return await self._fetch_once(key_id)

    async def _stored(self, key_id: str) -> Community | None:
        async with self._app[SESSIONS]() as session:
            return await RemoteActorRepository(session).get_by_key_id(key_id)

    def _may_refresh(self, key_id: str, stored: PublicKeyRecord) -> bool:
        """Refetch unless the key was refetched a moment ago.

        A key another process already refreshed is taken from the database.
        """
        cached = self._records.get(key_id)
        if cached is not None and cached.public_key_pem != stored.public_key_pem:
            self._records.put(key_id, stored)
            return False
        if self._refreshed.get(key_id):
            return False
        self._refreshed.put(key_id, True)
        return True

    async def _fetch_once(self, key_id: str) -> PublicKeyRecord | None:
        """One fetch per key at a time, however many requests are waiting for it;
        a new fetch only while there is a free slot for its host."""
        task = self._inflight.get(key_id)
        if task is None:
            host = url_host(key_id) or ""
            if not self._slots.try_acquire(host):
                raise KeyLookupBusy(
                    f"already fetching {self._slots.in_flight} keys ({host} at its limit)",
                    url=key_id,
                    retry_after=self._limits.retry_after,
                )
            task = asyncio.create_task(self._fetch(key_id), name=f"fetch-key {key_id[:80]}")
            self._inflight[key_id] = task
            task.add_done_callback(lambda done: self._fetch_done(key_id, host, done))
        return await asyncio.shield(task)

    def _fetch_done(
        self, key_id: str, host: str, task: asyncio.Task[PublicKeyRecord | None]
    ) -> None:
        self._slots.release(host)
        self._inflight.pop(key_id, None)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, FederationError):  # the remote's fault, not our database's
            self._failures.put(key_id, str(error))

    async def _fetch(self, key_id: str) -> PublicKeyRecord | None:
        """The key from its actor's document: the current key, or one the actor retired
        recently and still publishes (kept in memory only; the actor's row keeps its
        current key)."""
        actor = await self._fetch_actor(key_id.partition("#")[0])
        pem = actor.key_pem(key_id)
        if not pem:
            self._failures.put(key_id, f"{actor.id} does not publish key {key_id}")
            return None
        async with self._app[SESSIONS]() as session:
            try:
                await RemoteActorRepository(session).upsert(actor_to_data(actor))
            except ValueError as exc:
                raise FetchError(f"{actor.id} cannot be stored: {exc}", url=key_id) from exc
            await session.commit()
        record = PublicKeyRecord(key_id, actor.id, pem)
        self._records.put(key_id, record)
        self._failures.discard(key_id)
        return record

    async def _fetch_actor(self, url: str) -> Actor:
        """The actor behind `url`, following a bare key document to its `owner`
        when the owner is on the key's host (we fetch nowhere else for a key)."""
        document = await self._get(url)
        owner = _owner_of_key_document(document)
        if owner is not None:
            if not same_host(owner, url):
                raise FetchError(f"key {url} names an owner on another host: {owner}", url=url)
            document = await self._get(owner)
        return parse_actor(normalize_activity(document))

    async def _get(self, url: str) -> dict[str, Any]:
        key_id, private_pem = await self._our_signing_key()
        return await signed_get_json(
            self._session(),
            url,
            key_id=key_id,
            private_key_pem=private_pem,
            allow_private=self._config.allow_private_addresses,
            limits=self._limits.http,
            same_host_only=True,
        )

    async def _our_signing_key(self) -> tuple[str | None, str | None]:
        """The first local community's key: any of ours will do for a signed fetch.

        Read afresh for each fetch (they are few and bounded), so that a key
        rotated by `commons-node rotate-key` is used at once by a running node.
        """
        async with self._app[SESSIONS]() as session:
            locals_ = await CommunityRepository(session).list_local()
        signer = next((c for c in locals_ if c.key_id and c.private_key_pem), None)
        if signer is None or signer.key_id is None or signer.private_key_pem is None:
            return None, None
        return signer.key_id, signer.private_key_pem


__all__ = ["FetchSlots", "KeyFetchLimits", "SqlKeyResolver", "actor_to_data"]
