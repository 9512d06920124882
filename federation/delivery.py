"""Durable delivery of signed activities: retry policy and the worker that applies it.

The policy (`SCHEDULE`, `next_delay`, `classify`) is pure and decides, for one
POST to one inbox, whether the activity arrived, is worth another try and
when, or never will. The worker claims due jobs from a `DeliveryQueue` (which
`node/` implements over the database), posts them concurrently within a
limit per host and records the outcomes. Rows, hosts and leases are the
queue's business; nothing here knows about tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import aiohttp

from federation.errors import DeliveryNetworkError, FetchError, Refused
from federation.http_client import HttpLimits, PostResult, signed_post

logger = logging.getLogger(__name__)

# Waits between attempts, by the outages they are meant to outlast. The total
# (about 6 days, 5.3 to 6.5 with jitter) is how long a remote may be
# unreachable before we give up on an activity.
SCHEDULE: tuple[timedelta, ...] = (
    # A restart or redeploy: back within seconds to minutes.
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    # A night of maintenance: an 8-hour window is over by the attempt at ~10.5 h.
    timedelta(hours=2),
    timedelta(hours=8),
    timedelta(hours=12),
    # A weekend rebuild, a lapsed domain or a restore from backup: days.
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
)
# Each wait is stretched or shrunk by up to this fraction, so that the many
# deliveries queued by one outage do not all return at the same second.
JITTER = 0.10
# A remote's `Retry-After` is honoured up to this long; beyond it we assume a
# misconfiguration rather than wait a week on one header.
MAX_RETRY_AFTER = timedelta(hours=24)
_ERROR_CHARS = 300
# Outcomes are recorded together: after this long, or once this many are known.
RECORD_DELAY = 0.1
RECORD_BATCH = 200
# A worker holds up to this many times `per_host` leases of one host (sending
# and waiting), and claims more of it once half of that is free: a busy host
# costs one claim per `2 * per_host` deliveries.
HOLD_PER_HOST = 4


def next_delay(attempts: int, rng: random.Random | None = None) -> timedelta | None:
    """How long to wait after `attempts` failed attempts; None means give up.

    `attempts` counts the attempt that just failed, so the first retry is
    `next_delay(1)`. `rng` is injectable so tests can pin the jitter.
    """
    if attempts < 1:
        raise ValueError("attempts counts the attempt that failed, so it is at least 1")
    if attempts > len(SCHEDULE):
        return None
    return _jittered(SCHEDULE[attempts - 1], rng or random.Random())


def host_backoff(failures: int, rng: random.Random | None = None) -> timedelta:
    """How long to leave a host alone after `failures` consecutive failed rounds.

    Same schedule as one delivery, but a host is never given up on: it stays
    at the longest wait, because a new activity for it may arrive any time.
    """
    step = min(max(failures, 1), len(SCHEDULE))
    return _jittered(SCHEDULE[step - 1], rng or random.Random())


def _jittered(delay: timedelta, rng: random.Random) -> timedelta:
    return delay * (1 + rng.uniform(-JITTER, JITTER))


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Outcome:
    """What one attempt means for its delivery.

    `retry_after` is the remote's own request (429/503), already clamped.
    `blames_host` is False when the failure was ours (a bug, an unusable key),
    so the remote host is not backed off for it.
    """

    verdict: Verdict
    status: int | None
    error: str
    retry_after: timedelta | None = None
    blames_host: bool = True


def _retry_after(seconds: float | None) -> timedelta | None:
    if seconds is None:
        return None
    return min(timedelta(seconds=max(0.0, seconds)), MAX_RETRY_AFTER)


def _classify_status(status: int, retry_after: float | None, detail: str) -> Outcome:
    """Mastodon's rule: 2xx done; a 4xx is final unless it may pass (401, 408, 429)."""
    error = f"HTTP {status}{': ' + detail if detail else ''}"[:_ERROR_CHARS]
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, status, "")
    if status in (429, 503):
        return Outcome(Verdict.RETRY, status, error, _retry_after(retry_after))
    if 400 <= status < 500 and status not in (401, 408):
        return Outcome(Verdict.GIVE_UP, status, error)
    # 401 (their key cache is stale), 408, other 5xx, and odd 1xx/3xx answers
    # from proxies in front of a server that is being worked on.
    return Outcome(Verdict.RETRY, status, error)


def classify(result: PostResult | FetchError) -> Outcome:
    """The one place that decides what an inbox's answer (or silence) means."""
    if isinstance(result, PostResult):
        return _classify_status(result.status, result.retry_after, result.body_excerpt.strip())
    error = str(result)[:_ERROR_CHARS]
    if isinstance(result, Refused):
        return Outcome(Verdict.GIVE_UP, None, error)
    if isinstance(result, DeliveryNetworkError):
        return Outcome(Verdict.RETRY, None, error)
    if result.status is not None:
        return _classify_status(result.status, None, error)
    # A malformed inbox URL: waiting will not fix it.
    return Outcome(Verdict.GIVE_UP, None, error)


def local_failure(exc: Exception) -> Outcome:
    """An attempt that failed on our side: retried, without blaming the remote."""
    return Outcome(Verdict.RETRY, None, f"local error: {exc!r}"[:_ERROR_CHARS], blames_host=False)


def retry_delay(
    outcome: Outcome, attempts: int, rng: random.Random | None = None
) -> timedelta | None:
    """The wait before the next attempt, or None once the schedule is spent.

    A remote's `Retry-After` can only push the next attempt later than the
    schedule would: a proxy answering `503 Retry-After: 0` in a loop must not
    burn through days of attempts in seconds.
    """
    delay = next_delay(attempts, rng)
    if delay is None or outcome.retry_after is None:
        return delay
    return max(delay, outcome.retry_after)


@dataclass(frozen=True)
class DeliveryJob:
    """One claimed delivery: everything needed to sign and POST it, and no rows.

    `attempts` counts earlier attempts. The key and body stay out of `repr`, so
    a logged job never leaks the community's private key.
    """

    id: int
    activity_id: str
    target_inbox: str
    host: str
    body: bytes = field(repr=False)
    key_id: str
    private_key_pem: str = field(repr=False)
    attempts: int
    leased_until: datetime | None = None
    """When the queue's lease on it ends, if the queue says: the worker starts
    it only while half the lease is left, and forgets it otherwise (the row is
    claimed again once the lease lapses), so it never sends what another
    worker may have claimed meanwhile."""


@dataclass(frozen=True)
class Settlement:
    """How one attempt ends, for the queue to record.

    `retry_at` is set for a retry. `host_failed` counts a retry against the
    host, which is backed off no sooner than `host_wait` (the remote's own
    request); a delivery resets its host.
    """

    job: DeliveryJob
    verdict: Verdict
    status: int | None
    error: str
    retry_at: datetime | None = None
    host_failed: bool = False
    host_wait: timedelta | None = None


class DeliveryQueue(Protocol):
    """Durable storage of deliveries, with leases and per-host health.

    `claim` leases due jobs so no other worker takes them, skipping hosts that
    are blocked or backed off; given `per_host`, it takes at most that many of
    one host, or `room[host]` for a host the worker already holds some of (0
    skips it). `record` ends the leases of settled jobs in one go; `release`
    ends leases without an attempt, so the jobs are due again at once.
    """

    async def claim(
        self,
        limit: int,
        lease: timedelta,
        *,
        per_host: int | None = None,
        room: Mapping[str, int] | None = None,
    ) -> list[DeliveryJob]: ...

    async def record(self, settlements: Sequence[Settlement]) -> None: ...

    async def release(self, jobs: Sequence[DeliveryJob]) -> None: ...


@dataclass(frozen=True)
class Vacancy:
    """What a running worker takes straight from a transaction that queues
    deliveries, leased as they are inserted, instead of claiming them after the
    commit: at most `limit`, at most `room[host]` (else `per_host`) of one host."""

    lease_until: datetime
    limit: int
    per_host: int
    room: Mapping[str, int]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Host:
    """What one worker holds for one host: jobs sending now and jobs waiting their turn."""

    sending: int = 0
    waiting: deque[DeliveryJob] = field(default_factory=deque)


class _Signers(Executor):
    """The signing executor, counting what it has not finished yet. Each count is
    written by one thread only (submissions on the loop, completions on the pool),
    so `busy` needs no lock."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner
        self._submitted = 0
        self._finished = 0

    @property
    def busy(self) -> bool:
        return self._submitted > self._finished

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self._submitted += 1
        future = self._inner.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        self._finished += 1


class DeliveryWorker:
    """Sends due deliveries continuously, a bounded number at once per host.

    At most `concurrency` POSTs are in flight and at most `per_host` to one
    host, so a slow or dead host holds `per_host` slots and never the rest.
    The worker holds at most `batch_size` leases, answers not yet recorded
    included (by default four times what it may send, so one claim covers a
    fan-out to a few hundred hosts), and
    `HOLD_PER_HOST * per_host` of one host, sending or waiting. It claims
    again as soon as half the batch or half a busy host's room is free, at
    most each host's room per claim, round-robin over hosts: a thousand
    queued activities for one host do not keep a new one for another host
    waiting. Deliveries queued in this process may also be handed over
    without a claim (`vacancy`, `take`). Outcomes are
    recorded in batches, by one recording task at a time, every
    `RECORD_DELAY` or `RECORD_BATCH` outcomes.

    With `sign_on` (a pool as wide as the cores), jobs started together or
    while jobs for several hosts wait for a slot (a fan-out), or while the
    pool still signs, are signed on it: `cryptography` releases the GIL
    while it signs, so a fan-out is signed on every core. A steady stream to
    one host is signed on the event loop: handing each signature to a
    thread costs it a wait for the GIL to come back from the busy loop,
    which cost a tenth more CPU per delivery to a slow peer.

    `run_once()` is one round (tests call it directly): one claim, every job
    sent and recorded. `run_forever()` is the production loop. Cancelling
    either records the outcomes already known and releases the leases of jobs
    not yet answered, so a restart sends them at once instead of after the
    lease expires.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        http_session: aiohttp.ClientSession,
        *,
        allow_private: bool,
        limits: HttpLimits,
        batch_size: int | None = None,
        concurrency: int = 64,
        per_host: int = 16,
        lease: timedelta = timedelta(minutes=5),
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sign_on: Executor | None = None,
    ) -> None:
        self._queue = queue
        self._http = http_session
        self._allow_private = allow_private
        self._limits = limits
        self._concurrency = concurrency
        self._per_host = per_host
        self._hold = HOLD_PER_HOST * per_host
        self._batch_size = batch_size or 4 * concurrency
        self._lease = lease
        self._rng = rng or random.Random()
        self._clock = clock
        self._signers = None if sign_on is None else _Signers(sign_on)
        self._hosts: dict[str, _Host] = {}
        self._turns: deque[str] = deque()
        self._in_turn: set[str] = set()
        self._sending: dict[int, DeliveryJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held = 0
        self._unrecorded = 0
        self._attempted = 0
        self._capped: set[str] = set()
        self._more = False
        self._resting: set[str] = set()
        self._changed = asyncio.Event()
        self._settled: list[Settlement] = []
        self._unsent: list[DeliveryJob] = []
        self._recording: asyncio.Task[None] | None = None
        self._flush = asyncio.Event()
        self._running = False

    async def run_once(self) -> int:
        """Claim once, attempt every job claimed, record them; return how many were attempted."""
        before = self._attempted
        try:
            await self._fill()
            while self._held:
                self._changed.clear()
                await self._changed.wait()
            await self._recorded()
        except asyncio.CancelledError:
            await self._stop_cleanly()
            raise
        return self._attempted - before

    def vacancy(self) -> Vacancy | None:
        """Room for deliveries handed over by a transaction (`take`), while running."""
        limit = self._free() if self._running else 0
        if limit <= 0:
            return None
        lease_until = self._clock() + self._lease
        return Vacancy(lease_until, limit, self._hold, self._room())

    def take(self, jobs: Sequence[DeliveryJob]) -> None:
        """Send jobs whose rows a committed transaction queued already leased to us
        (within a `vacancy`). A stopped worker leaves them; their leases lapse."""
        if not self._running:
            return
        for job in jobs:
            self._hosts.setdefault(job.host, _Host()).waiting.append(job)
            self._take_turn(job.host)
        self._held += len(jobs)
        self._dispatch()
        self._changed.set()

    async def run_forever(
        self, poll_interval: float = 1.0, wake: asyncio.Event | None = None
    ) -> None:
        """Deliver until cancelled; `wake` cuts the wait short when work is enqueued."""
        errors = 0
        self._running = True
        try:
            while True:
                try:
                    await self._fill()
                    errors = 0
                except Exception:
                    errors += 1
                    logger.exception("delivery claim failed (%d in a row)", errors)
                    await asyncio.sleep(min(poll_interval * 2**errors, 60.0))
                    continue
                await self._until_claim_is_due(poll_interval, wake)
        except asyncio.CancelledError:
            self._running = False
            await self._stop_cleanly()
            raise
        finally:
            self._running = False

    # --- claiming ---------------------------------------------------------------

    def _room(self) -> dict[str, int]:
        """How many more jobs this worker takes of each host it holds any of."""
        hold = self._hold
        room = {name: hold - host.sending - len(host.waiting) for name, host in self._hosts.items()}
        room.update(dict.fromkeys(self._resting, 0))
        return room

    def _free(self) -> int:
        """Room for more leases: answers not yet recorded still hold theirs, so a
        worker killed at any moment leaves at most `batch_size` to be sent again."""
        return self._batch_size - self._held - self._unrecorded

    def _claim_is_due(self) -> bool:
        """More is due, and there is room for a worthwhile claim."""
        free = self._free()
        if free <= 0:
            return False
        if self._more and free >= self._batch_size // 2:
            return True
        room = self._room()
        return any(room.get(host, self._hold) >= self._hold // 2 for host in self._capped)

    async def _fill(self) -> None:
        """Claim what there is room for and start sending it."""
        limit = self._free()
        if limit <= 0:
            return
        room = self._room()
        jobs = await self._claim(limit, room)
        taken: dict[str, int] = {}
        for job in jobs:
            self._hosts.setdefault(job.host, _Host()).waiting.append(job)
            self._take_turn(job.host)
            taken[job.host] = taken.get(job.host, 0) + 1
        self._held += len(jobs)
        # Hosts that may have more due: those that filled their room now, and
        # those that had none, were skipped, and had filled it before.
        still_full = {h for h in self._capped if room.get(h, 1) <= 0}
        filled = {h for h, n in taken.items() if n >= room.get(h, self._hold)}
        self._capped = filled | still_full
        self._more = len(jobs) >= limit  # more of other hosts may be due
        self._dispatch()

    async def _claim(self, limit: int, room: Mapping[str, int]) -> list[DeliveryJob]:
        """Claim jobs. Cancelled meanwhile, the claim still completes and its leases
        are released, so a worker going away leaves nothing locked behind.
        """
        claiming = asyncio.ensure_future(
            self._queue.claim(limit, self._lease, per_host=self._hold, room=room)
        )
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            await self._release_claim(claiming)
            raise

    async def _release_claim(self, claiming: asyncio.Future[list[DeliveryJob]]) -> None:
        try:
            jobs = await claiming
        except Exception:
            logger.debug("claim failed while shutting down", exc_info=True)
            return
        await self._release(jobs)

    async def _until_claim_is_due(self, poll_interval: float, wake: asyncio.Event | None) -> None:
        """Wait until a claim is worthwhile, woken, or the next poll. Clearing `wake`
        after the wait means a wake-up during a claim is not lost: this returns at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + poll_interval
        while not self._claim_is_due():
            remaining = deadline - loop.time()
            if remaining <= 0 or (wake is not None and wake.is_set()):
                break
            self._changed.clear()
            waits = [asyncio.ensure_future(self._changed.wait())]
            if wake is not None:
                waits.append(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        if wake is not None:
            wake.clear()

    # --- sending ----------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start waiting jobs while there are free slots, one host at a time in turn.

        Only hosts that have jobs waiting and a free slot take turns, so a
        completion costs the same with a few hosts or a few hundred."""
        starting: list[tuple[DeliveryJob, _Host]] = []
        free = self._concurrency - len(self._sending)
        while len(starting) < free and self._turns:
            name = self._turns.popleft()
            self._in_turn.discard(name)
            host = self._hosts.get(name)
            if host is None or not host.waiting or host.sending >= self._per_host:
                continue
            job = host.waiting.popleft()
            if self._lease_ending(job):
                self._held -= 1
                logger.warning("delivery %s waited past half its lease; left for a claim", job.id)
            else:
                host.sending += 1
                starting.append((job, host))
            if host.waiting and host.sending < self._per_host:
                self._take_turn(name)  # to the back of the turn
        fanning_out = len(starting) > 1 or len(self._turns) > 1  # several hosts wait
        pooled = self._signers is not None and (fanning_out or self._signers.busy)
        for job, host in starting:
            self._start(job, host, pooled)

    def _lease_ending(self, job: DeliveryJob) -> bool:
        return job.leased_until is not None and job.leased_until - self._clock() < self._lease / 2

    def _take_turn(self, name: str) -> None:
        if name not in self._in_turn:
            self._in_turn.add(name)
            self._turns.append(name)

    def _start(self, job: DeliveryJob, host: _Host, pooled: bool) -> None:
        self._sending[job.id] = job
        self._attempted += 1
        task = asyncio.create_task(self._send(job, host, pooled), name=f"deliver-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, job: DeliveryJob, host: _Host, pooled: bool) -> None:
        """Attempt one job. Once its answer is known it is settled at once (no await
        in between), so an answered POST is recorded, never released for a re-send.
        """
        outcome = await self._attempt(job, self._signers if pooled else None)
        del self._sending[job.id]
        host.sending -= 1
        if host.waiting:
            self._take_turn(job.host)
        self._held -= 1
        settlement = self._settle(job, outcome)
        if settlement.host_failed:
            self._rest(job.host, host)
        self._settled.append(settlement)
        self._unrecorded += 1
        if not host.sending and not host.waiting:
            self._hosts.pop(job.host, None)
        self._record_soon()
        self._dispatch()
        self._changed.set()

    def _rest(self, name: str, host: _Host) -> None:
        """The host failed: give back what waits for it, claim no more of it until
        its backoff is recorded (the claim then skips it until the backoff ends)."""
        self._resting.add(name)
        self._unsent.extend(host.waiting)
        self._held -= len(host.waiting)
        host.waiting.clear()

    async def _attempt(self, job: DeliveryJob, sign_on: Executor | None) -> Outcome:
        try:
            result = await signed_post(
                self._http,
                job.target_inbox,
                job.body,
                key_id=job.key_id,
                private_key_pem=job.private_key_pem,
                allow_private=self._allow_private,
                limits=self._limits,
                sign_on=sign_on,
            )
        except FetchError as exc:
            return classify(exc)
        except Exception as exc:
            logger.exception("delivery %s to %s failed locally", job.id, job.target_inbox)
            return local_failure(exc)
        return classify(result)

    def _settle(self, job: DeliveryJob, outcome: Outcome) -> Settlement:
        """What the queue records for `outcome`: delivered, retried at a time, or given up."""
        if outcome.verdict is Verdict.DELIVERED:
            return Settlement(job, Verdict.DELIVERED, outcome.status, "")
        if outcome.verdict is Verdict.RETRY:
            delay = retry_delay(outcome, job.attempts + 1, self._rng)
            if delay is not None:
                at = self._clock() + delay
                logger.info(
                    "delivery %s to %s failed (%s), retrying at %s",
                    job.id,
                    job.target_inbox,
                    outcome.error,
                    at.isoformat(timespec="seconds"),
                )
                return Settlement(
                    job,
                    Verdict.RETRY,
                    outcome.status,
                    outcome.error,
                    retry_at=at,
                    host_failed=outcome.blames_host,
                    host_wait=outcome.retry_after,
                )
        logger.warning(
            "giving up delivery %s of %s to %s after %d attempts: %s",
            job.id,
            job.activity_id,
            job.target_inbox,
            job.attempts + 1,
            outcome.error,
        )
        return Settlement(job, Verdict.GIVE_UP, outcome.status, outcome.error)

    # --- recording --------------------------------------------------------------

    def _record_soon(self) -> None:
        """Start the recording task unless one runs; it takes everything settled meanwhile."""
        if len(self._settled) >= RECORD_BATCH or self._unsent or not self._held:
            self._flush.set()
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._record_all(), name="delivery-recorder")

    async def _gather_outcomes(self) -> None:
        """Let outcomes pile up for `RECORD_DELAY` (or until `RECORD_BATCH` of them,
        nothing left in flight, or a stop): one transaction then records them all,
        instead of one per handful of answers."""
        if self._flush.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush.wait(), RECORD_DELAY)

    async def _record_all(self) -> None:
        """Record settled jobs in batches until none are left, then give back
        what a failing host left waiting. A task of its own, so stopping the
        worker never cuts a recording short."""
        while self._settled or self._unsent:
            await self._gather_outcomes()
            self._flush.clear()
            settled, self._settled = self._settled, []
            unsent, self._unsent = self._unsent, []
            if settled:
                await self._record_logged(settled)
                self._unrecorded -= len(settled)
                self._resting -= {s.job.host for s in settled if s.host_failed}
                self._changed.set()
            if unsent:
                await self._release(unsent, stopping=False)

    async def _record_logged(self, settled: list[Settlement]) -> None:
        """Record the batch, or each on its own if the batch fails; if one still
        cannot be recorded its lease lapses and it is tried again, which is
        better than one database hiccup stopping the worker."""
        try:
            await self._queue.record(settled)
            return
        except Exception:
            if len(settled) == 1:
                logger.exception("could not record the outcome of delivery %s", settled[0].job.id)
                return
            logger.warning("could not record %d outcomes at once", len(settled), exc_info=True)
        for one in settled:
            await self._record_logged([one])

    async def _recorded(self) -> None:
        self._flush.set()
        while self._recording is not None and not self._recording.done():
            await asyncio.shield(self._recording)

    async def _stop_cleanly(self) -> None:
        """On cancellation: stop sending, finish recording known outcomes, release the rest."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        unsent = list(self._sending.values()) + self._unsent
        for host in self._hosts.values():
            unsent.extend(host.waiting)
        self._hosts.clear()
        self._turns.clear()
        self._in_turn.clear()
        self._sending.clear()
        self._unsent = []
        self._held = 0
        self._flush.set()
        if self._recording is not None:
            await asyncio.gather(self._recording, return_exceptions=True)
        await self._release(unsent)

    async def _release(self, jobs: list[DeliveryJob], *, stopping: bool = True) -> None:
        """Release leases. A failure here is logged, never raised: it must not
        replace a cancellation, and the leases lapse on their own.
        """
        if not jobs:
            return
        try:
            await self._queue.release(jobs)
        except Exception:
            logger.exception("could not release %d delivery leases", len(jobs))
            return
        if stopping:
            logger.info("released %d in-flight deliveries on shutdown", len(jobs))
