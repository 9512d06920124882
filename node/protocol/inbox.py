"""The inbox, wired to the node: routes, storage, key lookup and the processor task.

`federation.inbox` holds the protocol; this module gives it what it asks
for. Everything on the request path is kept off the database where a cache
is safe (public keys, the block list, local inbox slugs), so that accepting
an activity costs at most one short transaction, the insert into the inbox
log, which deliveries arriving together share (`GroupCommit`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.errors import FederationError, FetchError
from federation.http_client import HttpLimits, signed_get_json
from federation.inbox import (
    Handler,
    InboxProcessor,
    InboxReceiver,
    Outcome,
    QueuedActivity,
    error_response,
)
from federation.jsonld import normalize_activity
from federation.signatures import KeyResolver, PublicKeyRecord
from federation.vocab import ACTOR_TYPES, Activity, Actor, html_to_plain_text, parse_actor
from node.appkeys import CONFIG, ENGINE, HTTP, SESSIONS
from node.config import NodeConfig
from storage.models import Community
from storage.repositories import (
    BlockRepository,
    CommunityRepository,
    InboxRepository,
    RemoteActorRepository,
)
from storage.repositories.actors import RemoteActorData, block_list_version, host_is_blocked
from storage.repositories.inbox import EntryOutcome, NewInboxEntry

log = logging.getLogger(__name__)

INBOX_HANDLERS = web.AppKey("inbox_handlers", dict[str, Handler])
"""Activity type -> handler. Register before the app starts: `app[INBOX_HANDLERS][t] = h`."""
INBOX_WAKE = web.AppKey("inbox_wake", asyncio.Event)
INBOX_RECEIVER = web.AppKey("inbox_receiver", InboxReceiver)

PROCESSOR_POLL_SECONDS = 30.0
"""How often the processor looks for retries that came due without being woken."""
SHUTDOWN_GRACE_SECONDS = 5.0

T = TypeVar("T")


class _TtlCache(Generic[T]):
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


# --- storing -----------------------------------------------------------------------

_Waiter = tuple[NewInboxEntry, "asyncio.Future[bool]"]


class GroupCommit:
    """Stores that arrive while a commit is in flight share the next commit.

    At low load every activity gets a transaction of its own; under load (a
    busy server delivering in parallel) one short transaction serves all that
    queued meanwhile, which is what keeps the inbox near plain aiohttp
    throughput. Each caller still hears back only once its row is committed,
    so a 202 always means stored. `max_writers` commits may be in flight at
    once: one for SQLite, whose writers would only queue on its lock; a few
    for PostgreSQL, whose commits wait on the disk rather than on each other.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_writers: int = 1,
        max_rows: int = 100,
        max_chars: int = 4 * 1024 * 1024,
    ) -> None:
        self._sessions = sessions
        self._max_writers = max_writers
        self._max_rows = max_rows
        self._max_chars = max_chars
        self._queue: list[_Waiter] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def add(self, entry: NewInboxEntry) -> bool:
        """True when the entry was new; raises what the database raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, future))
        if len(self._writers) < self._max_writers:
            writer = asyncio.create_task(self._drain(), name="inbox-group-commit")
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await future

    async def _drain(self) -> None:
        batch: list[_Waiter] = []
        try:
            while self._queue:
                batch = self._take_batch()
                await self._write(batch)
        finally:
            for _, future in batch:
                future.cancel()  # a no-op unless this writer was cancelled mid-commit

    def _take_batch(self) -> list[_Waiter]:
        count, chars = 0, 0
        for entry, _ in self._queue:
            if count and (count >= self._max_rows or chars + len(entry.raw) > self._max_chars):
                break
            count, chars = count + 1, chars + len(entry.raw)
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch

    async def _write(self, batch: list[_Waiter]) -> None:
        unique: dict[str, NewInboxEntry] = {}
        for entry, _ in batch:
            unique.setdefault(entry.activity_id, entry)  # arrival order, first copy wins
        try:
            async with self._sessions() as session:
                new = await InboxRepository(session).add_many_if_new(list(unique.values()))
                await session.commit()
        except Exception as exc:  # noqa: BLE001 - every waiter re-raises it (a 503), none is lost
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for entry, future in batch:
            if not future.done():
                future.set_result(entry.activity_id in new)
            new.discard(entry.activity_id)  # a duplicate within the batch is not new


class SqlInboxStore:
    """`InboxStore` on the inbox log, with the block list and local slugs cached briefly.

    A block added through this process applies at once; one added by another
    process sharing the database, within `block_cache_seconds`.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        block_cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._writes: GroupCommit | None = None
        self._blocks = _TtlCache[frozenset[str]](block_cache_seconds, 1, clock)
        self._blocks_version = block_list_version()
        self._local_actors = _TtlCache[str](60.0, 1024, clock)

    async def _blocked_domains(self) -> frozenset[str]:
        """The block list, reloaded when this process changed it or after a few seconds."""
        version = block_list_version()
        blocked = self._blocks.get("all")
        if blocked is None or version != self._blocks_version:
            async with self._app[SESSIONS]() as session:
                blocked = await BlockRepository(session).domains()
            self._blocks.put("all", blocked)
            self._blocks_version = version
        return blocked

    async def is_blocked(self, host: str) -> bool:
        return host_is_blocked(await self._blocked_domains(), host)

    async def store(self, activity: Activity, raw: bytes, recipient: str | None) -> bool:
        entry = NewInboxEntry(
            activity.id, activity.type, activity.actor, raw.decode("utf-8"), recipient
        )
        if self._writes is None:  # the engine exists only once the app has started
            sqlite = self._app[ENGINE].dialect.name == "sqlite"
            self._writes = GroupCommit(self._app[SESSIONS], max_writers=1 if sqlite else 2)
        return await self._writes.add(entry)

    async def local_actor(self, slug: str) -> str | None:
        """The actor id of the local community `slug`, or None: whose inbox a POST is for."""
        actor_id = self._local_actors.get(slug)
        if actor_id is None:
            async with self._app[SESSIONS]() as session:
                community = await CommunityRepository(session).get_local_by_slug(slug)
            if community is None:
                return None
            actor_id = community.ap_id
            self._local_actors.put(slug, actor_id)
        return actor_id


INBOX_STORE = web.AppKey("inbox_store", SqlInboxStore)


class SqlInboxQueue:
    """`InboxQueue` on the inbox log: one short transaction per claim, one per batch."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedActivity]:
        async with self._sessions() as session:
            entries = await InboxRepository(session).claim(now, limit, lease)
            await session.commit()
        return [QueuedActivity(e.id, e.raw, e.recipient, e.attempts) for e in entries]

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        rows = [EntryOutcome(o.entry_id, o.state, o.error, o.retry_at) for o in outcomes]
        async with self._sessions() as session:
            await InboxRepository(session).record(rows)
            await session.commit()


# --- keys ----------------------------------------------------------------------------


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
    )


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
    """

    def __init__(
        self,
        app: web.Application,
        *,
        limits: HttpLimits | None = None,
        memory_ttl: float = 600.0,
        failure_ttl: float = 30.0,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._limits = limits or HttpLimits()
        self._records = _TtlCache[PublicKeyRecord](memory_ttl, 4096, clock)
        self._failures = _TtlCache[str](failure_ttl, 4096, clock)
        self._refreshed = _TtlCache[bool](refresh_interval, 4096, clock)
        self._inflight: dict[str, asyncio.Task[PublicKeyRecord | None]] = {}
        self._signing_key: tuple[str, str] | None = None

    @property
    def _config(self) -> NodeConfig:
        return self._app[CONFIG]

    async def __call__(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        return await (self._refresh(key_id) if refresh else self._lookup(key_id))

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
        """One fetch per key at a time, however many requests are waiting for it."""
        task = self._inflight.get(key_id)
        if task is None:
            task = asyncio.create_task(self._fetch(key_id), name=f"fetch-key {key_id[:80]}")
            self._inflight[key_id] = task
            task.add_done_callback(lambda done: self._fetch_done(key_id, done))
        return await asyncio.shield(task)

    def _fetch_done(self, key_id: str, task: asyncio.Task[PublicKeyRecord | None]) -> None:
        self._inflight.pop(key_id, None)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, FederationError):  # the remote's fault, not our database's
            self._failures.put(key_id, str(error))

    async def _fetch(self, key_id: str) -> PublicKeyRecord | None:
        actor = await self._fetch_actor(key_id.partition("#")[0])
        if actor.public_key_id != key_id or not actor.public_key_pem:
            self._failures.put(key_id, f"{actor.id} does not publish key {key_id}")
            return None
        async with self._app[SESSIONS]() as session:
            try:
                await RemoteActorRepository(session).upsert(actor_to_data(actor))
            except ValueError as exc:
                raise FetchError(f"{actor.id} cannot be stored: {exc}", url=key_id) from exc
            await session.commit()
        record = PublicKeyRecord(key_id, actor.id, actor.public_key_pem)
        self._records.put(key_id, record)
        self._failures.discard(key_id)
        return record

    async def _fetch_actor(self, url: str) -> Actor:
        """The actor behind `url`, following a bare key document to its `owner`."""
        document = await self._get(url)
        owner = _owner_of_key_document(document)
        if owner is not None:
            document = await self._get(owner)
        return parse_actor(normalize_activity(document))

    async def _get(self, url: str) -> dict[str, Any]:
        key_id, private_pem = await self._our_signing_key()
        return await signed_get_json(
            self._app[HTTP],
            url,
            key_id=key_id,
            private_key_pem=private_pem,
            allow_private=self._config.allow_private_addresses,
            limits=self._limits,
        )

    async def _our_signing_key(self) -> tuple[str | None, str | None]:
        """The first local community's key: any of ours will do for a signed fetch."""
        if self._signing_key is None:
            async with self._app[SESSIONS]() as session:
                locals_ = await CommunityRepository(session).list_local()
            signer = next((c for c in locals_ if c.key_id and c.private_key_pem), None)
            if signer is None or signer.key_id is None or signer.private_key_pem is None:
                return None, None
            self._signing_key = (signer.key_id, signer.private_key_pem)
        return self._signing_key


# --- routes and the processor task -------------------------------------------------------


async def community_inbox(request: web.Request) -> web.Response:
    """POST /c/{slug}/inbox: the shared pipeline, remembering which community it was for."""
    slug = request.match_info["slug"]
    actor_id = await request.app[INBOX_STORE].local_actor(slug)
    if actor_id is None:
        return error_response(404, "not_found", f"there is no community {slug!r} here")
    return await request.app[INBOX_RECEIVER].receive(request, recipient=actor_id)


def setup_inbox_routes(
    app: web.Application,
    handlers: Mapping[str, Handler] | None = None,
    *,
    key_resolver: KeyResolver | None = None,
) -> InboxReceiver:
    """Register POST /inbox and POST /c/{slug}/inbox; needs `app[CONFIG]` set.

    `handlers` seeds `app[INBOX_HANDLERS]`, which may be added to until the
    app starts. `key_resolver` replaces the database-backed one (tests).
    """
    config = app[CONFIG]
    wake = asyncio.Event()
    store = SqlInboxStore(app)
    receiver = InboxReceiver(
        store,
        key_resolver or SqlKeyResolver(app),
        wake.set,
        max_skew=timedelta(seconds=config.signature_max_skew_seconds),
    )
    app[INBOX_HANDLERS] = dict(handlers or {})
    app[INBOX_WAKE] = wake
    app[INBOX_STORE] = store
    app[INBOX_RECEIVER] = receiver
    app.router.add_post("/inbox", receiver.__call__)
    app.router.add_post("/c/{slug}/inbox", community_inbox)
    return receiver


async def inbox_processor_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: handle stored activities in the background while the app runs.

    Append after the database context. On shutdown the batch in hand gets
    `SHUTDOWN_GRACE_SECONDS` to finish; after that the task is cancelled, and
    an entry cut off mid-handler is handled again once its lease runs out.
    """
    handlers: dict[str, Handler] = app[INBOX_HANDLERS]
    processor = InboxProcessor(SqlInboxQueue(app[SESSIONS]), handlers)
    task = asyncio.create_task(
        processor.run_forever(PROCESSOR_POLL_SECONDS, app[INBOX_WAKE]), name="inbox-processor"
    )
    try:
        yield
    finally:
        processor.stop()
        _, pending = await asyncio.wait([task], timeout=SHUTDOWN_GRACE_SECONDS)
        if pending:
            task.cancel()
            await asyncio.wait([task])


__all__ = [
    "INBOX_HANDLERS",
    "INBOX_RECEIVER",
    "INBOX_STORE",
    "INBOX_WAKE",
    "GroupCommit",
    "SqlInboxQueue",
    "SqlInboxStore",
    "SqlKeyResolver",
    "actor_to_data",
    "inbox_processor_ctx",
    "setup_inbox_routes",
]
