"""The inbox, wired to the node: routes, storage and the processor task.

`federation.inbox` and `federation.inbox_processor` hold the protocol; this
module gives them what they ask for, with signing keys looked up by
`node.protocol.key_resolver`. Everything on the request path is kept off the
database where a cache is safe (public keys, the block list, local inbox
slugs), so that accepting an activity costs at most one short transaction,
the insert into the inbox log, which deliveries arriving together share
(`GroupCommit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.inbox import InboxReceiver, error_response
from federation.inbox_processor import (
    BatchHandler,
    Handler,
    InboxProcessor,
    Outcome,
    QueuedActivity,
)
from federation.rate_limit import HostRateLimiter, Rate
from federation.signatures import KeyResolver
from federation.vocab import Activity
from node.appkeys import CONFIG, ENGINE, SESSIONS, WORKER_POLL_SECONDS
from node.config import NodeConfig
from node.ops.metrics import METRICS
from node.protocol.clock_skew import ClockSkewRecorder
from node.protocol.key_resolver import SqlKeyResolver
from node.protocol.ttl_cache import TtlCache
from storage.repositories import BlockRepository, CommunityRepository, InboxRepository
from storage.repositories.actors import block_list_version, host_is_blocked
from storage.repositories.inbox import EntryOutcome, NewInboxEntry
from storage.repositories.relays import RelayRepository
from storage.write_turns import write_turn

log = logging.getLogger(__name__)

INBOX_HANDLERS = web.AppKey("inbox_handlers", dict[str, Handler])
"""Activity type -> handler. Register before the app starts: `app[INBOX_HANDLERS][t] = h`."""
INBOX_BATCH = web.AppKey("inbox_batch", BatchHandler)
"""Handles runs of activities at once (listings, mirrored in one transaction); optional."""
INBOX_WAKE = web.AppKey("inbox_wake", asyncio.Event)
INBOX_RECEIVER = web.AppKey("inbox_receiver", InboxReceiver)

PROCESSOR_POLL_SECONDS = 30.0
"""How often the processor looks for retries that came due without being woken."""
SHUTDOWN_GRACE_SECONDS = 5.0


# --- storing -----------------------------------------------------------------------

_Waiter = tuple[NewInboxEntry, "asyncio.Future[bool]"]


class InboxBacklog:
    """How many stored activities this process's processor has yet to handle, and a
    brake on the inbox when that passes `limit`.

    Accepting costs less than handling, so a server that delivers as fast as we
    answer would have us store far more than we handle, and the backlog would
    grow as long as it kept sending. Past `limit` waiting entries, the inbox
    holds its next commit (and so its 202s) until the processor has made room,
    for at most `max_wait` seconds: senders slow down to the pace we handle at,
    and nothing is refused. Only counts while the processor runs in this
    process (`active`); a web-only process leaves the pace to its workers.
    """

    def __init__(self, limit: int, *, max_wait: float = 1.0) -> None:
        self.limit = limit
        self.max_wait = max_wait
        self.active = False
        self.waiting = 0
        self._room = asyncio.Event()
        self._room.set()

    def added(self, count: int) -> None:
        self.waiting += count
        if self.limit and self.waiting >= self.limit:
            self._room.clear()

    def handled(self, count: int) -> None:
        self.waiting = max(0, self.waiting - count)
        if self.waiting < self.limit * 0.9:
            self._room.set()

    async def room(self) -> None:
        """Return once there is room, or after `max_wait` seconds whatever the backlog."""
        if not self.active or self._room.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), self.max_wait)


INBOX_BACKLOG = web.AppKey("inbox_backlog", InboxBacklog)


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
        backlog: InboxBacklog | None = None,
    ) -> None:
        self._sessions = sessions
        self._backlog = backlog
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
        if self._backlog is not None:
            await self._backlog.room()
        try:
            async with write_turn(self._sessions), self._sessions() as session:
                new = await InboxRepository(session).add_many_if_new(list(unique.values()))
                await session.commit()
        except Exception as exc:  # noqa: BLE001 - every waiter re-raises it (a 503), none is lost
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if self._backlog is not None:
            self._backlog.added(len(new))
        for entry, future in batch:
            if not future.done():
                future.set_result(entry.activity_id in new)
            new.discard(entry.activity_id)  # a duplicate within the batch is not new


RECENT_IDS = 50_000
"""How many recently stored activity ids are kept in memory to answer repeats."""
RECENT_ID_SECONDS = 3600.0
RELAY_CACHE_SECONDS = 10.0


class SqlInboxStore:
    """`InboxStore` on the inbox log, with the block list and local slugs cached briefly.

    A block added through this process applies at once; one added by another
    process sharing the database, within `block_cache_seconds`. The ids of
    activities stored in the last hour are remembered, so that a server
    retrying (or a busy one delivering the same activity to several of our
    inboxes) hears its 202 without a database write; the unique index behind
    it still decides for anything not remembered.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        block_cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        backlog: InboxBacklog | None = None,
    ) -> None:
        self._app = app
        self._backlog = backlog
        self._writes: GroupCommit | None = None
        self._blocks = TtlCache[frozenset[str]](block_cache_seconds, 1, clock)
        self._blocks_version = block_list_version()
        self._local_actors = TtlCache[str](60.0, 1024, clock)
        self._recent_ids = TtlCache[bool](RECENT_ID_SECONDS, RECENT_IDS, clock)
        self._relays = TtlCache[bool](RELAY_CACHE_SECONDS, 256, clock)

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
        if self._recent_ids.get(activity.id):
            return False
        entry = NewInboxEntry(
            activity.id, activity.type, activity.actor, raw.decode("utf-8"), recipient
        )
        if self._writes is None:  # the engine exists only once the app has started
            sqlite = self._app[ENGINE].dialect.name == "sqlite"
            self._writes = GroupCommit(
                self._app[SESSIONS], max_writers=1 if sqlite else 2, backlog=self._backlog
            )
        stored = await self._writes.add(entry)
        self._recent_ids.put(activity.id, True)  # committed, new or not
        return stored

    async def is_relay(self, actor_id: str) -> bool:
        """Whether one of our communities has an accepted subscription to `actor_id`,
        remembered for a few seconds (asked only of bodies a relay's key signed for
        another host's actor)."""
        known = self._relays.get(actor_id)
        if known is None:
            async with self._app[SESSIONS]() as session:
                known = await RelayRepository(session).active_by_actor(actor_id) is not None
            self._relays.put(actor_id, known)
        return known

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

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], backlog: InboxBacklog | None = None
    ) -> None:
        self._sessions = sessions
        self._backlog = backlog

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedActivity]:
        async with write_turn(self._sessions), self._sessions() as session:
            entries = await InboxRepository(session).claim(now, limit, lease)
            await session.commit()
        return [
            QueuedActivity(e.id, e.raw, e.recipient, e.attempts, e.actor, e.activity_id)
            for e in entries
        ]

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        rows = [EntryOutcome(o.entry_id, o.state, o.error, o.retry_at) for o in outcomes]
        async with write_turn(self._sessions), self._sessions() as session:
            await InboxRepository(session).record(rows)
            await session.commit()
        if self._backlog is not None:
            self._backlog.handled(len(rows))


# --- routes and the processor task -------------------------------------------------------


async def community_inbox(request: web.Request) -> web.Response:
    """POST /c/{slug}/inbox: the shared pipeline, remembering which community it was for."""
    slug = request.match_info["slug"]
    actor_id = await request.app[INBOX_STORE].local_actor(slug)
    if actor_id is None:
        return error_response(404, "not_found", f"there is no community {slug!r} here")
    return await request.app[INBOX_RECEIVER].receive(request, recipient=actor_id)


def inbox_rate_limiter(config: NodeConfig) -> HostRateLimiter:
    """Per-host budgets for what arrives at our inboxes, from the node's settings."""
    return HostRateLimiter(
        {
            "follow": Rate(config.follow_rate_burst, config.follow_rate_per_minute),
            "activity": Rate(config.activity_rate_burst, config.activity_rate_per_minute),
        }
    )


async def _close_key_resolver(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the key resolver's own HTTP session closes with the app."""
    yield
    close = getattr(app[INBOX_RECEIVER].resolve_key, "close", None)
    if close is not None:
        await close()


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
    backlog = InboxBacklog(config.inbox_backlog_limit)
    store = SqlInboxStore(app, backlog=backlog)
    receiver = InboxReceiver(
        store,
        key_resolver or SqlKeyResolver(app, is_blocked=store.is_blocked),
        wake.set,
        expected_host=config.host,
        max_skew=timedelta(seconds=config.signature_max_skew_seconds),
        limiter=inbox_rate_limiter(config),
        observe=metrics.inbox_result if (metrics := app.get(METRICS)) is not None else None,
        note_skew=ClockSkewRecorder(lambda: app[SESSIONS]),
        is_relay=store.is_relay,
    )
    app[INBOX_HANDLERS] = dict(handlers or {})
    app[INBOX_WAKE] = wake
    app[INBOX_STORE] = store
    app[INBOX_RECEIVER] = receiver
    app[INBOX_BACKLOG] = backlog
    app.router.add_post("/inbox", receiver.__call__)
    app.router.add_post("/c/{slug}/inbox", community_inbox)
    app.cleanup_ctx.append(_close_key_resolver)
    return receiver


def handler_concurrency(app: web.Application) -> int:
    """The configured number of servers handled side by side, or the database's default."""
    configured = app[CONFIG].inbox_handler_concurrency
    if configured:
        return configured
    return 1 if app[ENGINE].dialect.name == "sqlite" else 4


async def inbox_processor_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: handle stored activities in the background while the app runs.

    Append after the database context. On shutdown the batch in hand gets
    `SHUTDOWN_GRACE_SECONDS` to finish; after that the task is cancelled, and
    an entry cut off mid-handler is handled again once its lease runs out.
    """
    handlers: dict[str, Handler] = app[INBOX_HANDLERS]
    backlog = app[INBOX_BACKLOG]
    processor = InboxProcessor(
        SqlInboxQueue(app[SESSIONS], backlog),
        handlers,
        concurrency=handler_concurrency(app),
        batch_handler=app.get(INBOX_BATCH),
    )
    task = asyncio.create_task(
        processor.run_forever(
            app.get(WORKER_POLL_SECONDS, PROCESSOR_POLL_SECONDS), app[INBOX_WAKE]
        ),
        name="inbox-processor",
    )
    backlog.active = True
    try:
        yield
    finally:
        backlog.active = False
        processor.stop()
        _, pending = await asyncio.wait([task], timeout=SHUTDOWN_GRACE_SECONDS)
        if pending:
            task.cancel()
            await asyncio.wait([task])


__all__ = [
    "INBOX_BACKLOG",
    "INBOX_BATCH",
    "INBOX_HANDLERS",
    "INBOX_RECEIVER",
    "INBOX_STORE",
    "INBOX_WAKE",
    "GroupCommit",
    "InboxBacklog",
    "SqlInboxQueue",
    "SqlInboxStore",
    "inbox_processor_ctx",
    "setup_inbox_routes",
]
