"""Handling stored activities: one handler per type, an outcome per entry.

The second half of the inbox. `federation.inbox` stores what it accepts and
answers 202; the processor here claims stored entries with a lease, runs the
handler the table names for each type, and records whether it was handled,
ignored, failed or is to be retried. The queue and the handler table are
injected by `node`, so this module knows the protocol and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Protocol

import orjson

from federation.hosts import url_host
from federation.jsonld import normalize_activity
from federation.vocab import Activity, VocabError, parse_activity

logger = logging.getLogger(__name__)

EntryState = Literal["handled", "ignored", "failed", "retry"]


@dataclass(frozen=True, slots=True)
class InboundActivity:
    """What a handler is given: the activity and where it arrived.

    `recipient` is the actor id of the local community whose inbox it was
    posted to, or None for the shared inbox (where the audience says who it
    is for). `attempt` counts from 1; above 1 the handler is being retried.
    """

    activity: Activity
    recipient: str | None
    entry_id: int
    attempt: int


Handler = Callable[[InboundActivity], Awaitable[None]]
HandlerTable = Mapping[str, Handler]


class BatchHandler(Protocol):
    """Handles many activities of one kind at once (mirroring a run of listings in
    one transaction, say), where the table's handler would take them one by one.

    `takes(activity)` says which activities it handles; the processor hands it
    runs of consecutive entries it takes, in arrival order. `handle` returns,
    for each entry in order, None when it was handled or the exception a
    single handler would have raised for it (`IgnoreActivity`, `Retry`, ...).
    If `handle` itself raises, the run is handled again one entry at a time by
    the table's handlers, so one bad entry never costs the others.
    """

    def takes(self, activity: Activity) -> bool: ...

    async def handle(self, batch: Sequence[InboundActivity]) -> Sequence[BaseException | None]: ...


class IgnoreActivity(Exception):
    """Raised by a handler for a well-formed activity it will not act on.

    Recorded as `ignored` with the reason, never retried (an `Accept` nobody
    asked for, a `Follow` of something that is not ours). `node` may subclass it.
    """


class Retry(Exception):
    """Raised by a handler when a later attempt may succeed (a remote fetch failed).

    `delay` overrides the processor's schedule for this attempt.
    """

    def __init__(self, reason: str, *, delay: timedelta | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class QueuedActivity:
    """A stored activity claimed for handling; `attempts` includes this one."""

    entry_id: int
    raw: str
    recipient: str | None
    attempts: int
    actor: str = ""
    activity_id: str = ""
    """The id and actor the inbox accepted it under (empty: not known, not checked)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed entry; a `retry` waits until `retry_at`."""

    entry_id: int
    state: EntryState
    error: str | None = None
    retry_at: datetime | None = None


class InboxQueue(Protocol):
    """The stored activities as a work queue with leases; `node` backs it with the log."""

    async def claim(
        self, now: datetime, limit: int, lease: timedelta
    ) -> Sequence[QueuedActivity]: ...

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write the outcomes of a batch at once (one commit for many activities)."""
        ...


RETRY_DELAYS: Final = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))
"""Waits before attempts 2, 3 and 4: enough to ride out a remote restarting,
a deploy, or a short maintenance window; anything longer is a failure a
steward should see rather than a retry loop."""
MAX_ERROR_CHARS: Final = 2000


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def _one_line(text: str, limit: int = 300) -> str:
    """Remote text fit for a log line: no line breaks to forge entries with, bounded."""
    return text.replace("\r", "\\r").replace("\n", "\\n")[:limit]


class InboxProcessor:
    """Handles stored activities: one handler per type, outcomes recorded per entry.

    Each remote server's entries are handled one at a time in arrival order,
    so a `Follow` and its `Undo` are seen in the order they came. With
    `concurrency` above 1, different servers' entries are handled side by
    side, up to that many at once: what one activity touches (a mirrored
    listing, a partnership, an exchange, a server's quota of pending
    proposals) is spoken for by one remote server only, so two lanes never
    race on one object, and handlers that wait on the database or the network
    overlap. An unknown type is recorded as ignored; a
    handler's exception is recorded as failed and logged, and never stops the
    loop; `Retry` puts the entry back for a later attempt.
    """

    def __init__(
        self,
        queue: InboxQueue,
        handlers: HandlerTable,
        *,
        lease: timedelta = timedelta(minutes=5),
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        batch_size: int = 50,
        batch_window: float = 0.05,
        concurrency: int = 1,
        batch_handler: BatchHandler | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency is at least 1")
        self.queue = queue
        self.handlers = handlers
        self.lease = lease
        self.retry_delays = tuple(retry_delays)
        self.batch_size = batch_size
        self.batch_window = batch_window
        self.concurrency = concurrency
        self.batch_handler = batch_handler
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stopping = False
        self._wake_event: asyncio.Event | None = None

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    async def run_once(self, limit: int | None = None) -> int:
        """Claim and handle up to `limit` entries; returns how many were claimed.

        Outcomes are written together once the batch is done, even when it is
        cut short; an entry whose outcome was not written is handled again
        after its lease, as after a crash (handlers must bear that anyway).
        """
        entries = await self.queue.claim(self._clock(), limit or self.batch_size, self.lease)
        outcomes: list[Outcome] = []
        try:
            lanes = _lanes_by_server(entries) if self.concurrency > 1 else [list(entries)]
            if len(lanes) == 1:
                await self._run_lane(lanes[0], outcomes)
            else:
                slots = asyncio.Semaphore(self.concurrency)
                async with asyncio.TaskGroup() as group:
                    for lane in lanes:
                        group.create_task(self._run_lane(lane, outcomes, slots))
        finally:
            if outcomes:
                await self.queue.record(outcomes)
        return len(entries)

    async def _run_lane(
        self,
        lane: Sequence[QueuedActivity],
        outcomes: list[Outcome],
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        """Handle one server's entries in order, holding one of the `slots` throughout.

        Consecutive entries the batch handler takes are handed to it together;
        the others go to the table's handlers one at a time, in between.
        """
        async with slots or contextlib.nullcontext():
            run: list[InboundActivity] = []
            for entry in lane:
                read = self._read(entry)
                if isinstance(read, Outcome):
                    outcomes.append(read)
                    continue
                batched = self.batch_handler is not None and self.batch_handler.takes(read.activity)
                if batched:
                    run.append(read)
                    if len(run) < self.batch_size:
                        continue
                outcomes.extend(await self._run_batch(run))
                run = []
                if not batched:
                    outcomes.append(await self._dispatch(read))
            outcomes.extend(await self._run_batch(run))

    async def _run_batch(self, run: Sequence[InboundActivity]) -> list[Outcome]:
        if not run:
            return []
        if self.batch_handler is None:
            return [await self._dispatch(inbound) for inbound in run]
        try:
            results = await self.batch_handler.handle(run)
            if len(results) != len(run):
                raise RuntimeError(f"{len(results)} results for a batch of {len(run)}")
        except Exception:
            logger.exception("a batch of %d activities failed; handling them one by one", len(run))
            return [await self._dispatch(inbound) for inbound in run]
        return [self._outcome(inbound, exc) for inbound, exc in zip(run, results, strict=True)]

    async def run_forever(self, poll_interval: float, wake_event: asyncio.Event) -> None:
        """Work when woken (an activity was stored; after `batch_window` seconds, so
        that a burst is claimed and recorded together) or every `poll_interval`.

        The poll picks up retries that came due and entries whose lease ran
        out because a worker died. Errors of the queue itself are logged and
        waited out. Returns after `stop()` once the current batch is done;
        cancellation ends it at once.
        """
        self._wake_event = wake_event
        while not self._stopping:
            wake_event.clear()
            try:
                claimed = await self.run_once()
            except Exception:
                logger.exception("inbox processing failed; trying again in %ss", poll_interval)
                claimed = 0
            if claimed >= self.batch_size or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake_event.wait(), poll_interval)
                # Let a burst gather, so that it is claimed and recorded as one batch.
                await asyncio.sleep(self.batch_window)

    def stop(self) -> None:
        """Ask `run_forever` to return when its current batch is done (a clean shutdown)."""
        self._stopping = True
        if self._wake_event is not None:
            self._wake_event.set()

    def _read(self, entry: QueuedActivity) -> InboundActivity | Outcome:
        """The entry as an activity to handle, or its outcome when it cannot be."""
        if entry.attempts > self.max_attempts:
            return Outcome(entry.entry_id, "failed", "gave up: too many attempts")
        try:
            activity = parse_activity(normalize_activity(orjson.loads(entry.raw)))
        except (orjson.JSONDecodeError, VocabError) as exc:
            return Outcome(entry.entry_id, "failed", _describe(exc))
        if (entry.activity_id and activity.id != entry.activity_id) or (
            entry.actor and activity.actor != entry.actor
        ):
            # The signature was checked against the actor the inbox read; JSON-LD
            # must not turn the document into another actor's or another activity.
            reason = f"JSON-LD reads it as {activity.id} by {activity.actor}"
            return Outcome(entry.entry_id, "failed", reason[:MAX_ERROR_CHARS])
        return InboundActivity(activity, entry.recipient, entry.entry_id, entry.attempts)

    async def _dispatch(self, inbound: InboundActivity) -> Outcome:
        """The table's handler for one activity, its outcome recorded."""
        handler = self.handlers.get(inbound.activity.type)
        if handler is None:
            return Outcome(inbound.entry_id, "ignored", f"no handler for {inbound.activity.type}")
        try:
            await handler(inbound)
        except Exception as exc:  # noqa: BLE001 - every exception becomes an outcome
            return self._outcome(inbound, exc)
        return Outcome(inbound.entry_id, "handled")

    def _outcome(self, inbound: InboundActivity, exc: BaseException | None) -> Outcome:
        """What a handler's exception (None: it returned) means for the entry."""
        entry_id, activity = inbound.entry_id, inbound.activity
        if exc is None:
            return Outcome(entry_id, "handled")
        if isinstance(exc, IgnoreActivity):
            return Outcome(entry_id, "ignored", str(exc) or type(exc).__name__)
        if isinstance(exc, Retry):
            return self._retry_or_fail(inbound, exc)
        if isinstance(exc, VocabError):
            # Bad input from a remote, not a bug of ours: one line, no traceback.
            logger.warning(
                "malformed %s %s from %s: %s",
                activity.type,
                _one_line(activity.id),
                _one_line(activity.actor),
                _one_line(str(exc)),
            )
            return Outcome(entry_id, "failed", _describe(exc))
        if not isinstance(exc, Exception):
            raise exc  # cancellation and the like are not outcomes
        logger.error("handler for %s %s failed", activity.type, activity.id, exc_info=exc)
        return Outcome(entry_id, "failed", _describe(exc))

    def _retry_or_fail(self, inbound: InboundActivity, exc: Retry) -> Outcome:
        if inbound.attempt >= self.max_attempts:
            reason = f"gave up after {inbound.attempt} attempts: {_describe(exc)}"
            return Outcome(inbound.entry_id, "failed", reason[:MAX_ERROR_CHARS])
        delay = exc.delay if exc.delay is not None else self.retry_delays[inbound.attempt - 1]
        activity = inbound.activity
        logger.info("will retry %s %s in %s: %s", activity.type, activity.id, delay, exc)
        return Outcome(inbound.entry_id, "retry", _describe(exc), self._clock() + delay)


def _lanes_by_server(entries: Sequence[QueuedActivity]) -> list[list[QueuedActivity]]:
    """The entries split by their actor's server, each lane in arrival order."""
    lanes: dict[str | None, list[QueuedActivity]] = {}
    for entry in entries:
        lanes.setdefault(url_host(entry.actor), []).append(entry)
    return list(lanes.values())
