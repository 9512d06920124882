"""Durable delivery of signed activities: retry policy and the worker that applies it.

The policy (`SCHEDULE`, `next_delay`, `classify`) is pure and decides, for one
POST to one inbox, whether the activity arrived, is worth another try and
when, or never will. The worker claims due jobs from a `DeliveryQueue` (which
`node/` implements over the database), posts them concurrently and records
each outcome. Rows, hosts and leases are the queue's business; nothing here
knows about tables.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

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


class DeliveryQueue(Protocol):
    """Durable storage of deliveries, with leases and per-host health.

    `claim` leases due jobs so no other worker takes them, skipping hosts that
    are blocked or backed off. The other methods end a lease. A retryable
    failure with `host_failed` also counts against the host, which is backed
    off as a whole (no sooner than `host_wait`, the remote's own request);
    `delivered` resets the host.
    """

    async def claim(self, limit: int, lease: timedelta) -> list[DeliveryJob]: ...

    async def delivered(self, job: DeliveryJob, status: int) -> None: ...

    async def retry(
        self,
        job: DeliveryJob,
        at: datetime,
        status: int | None,
        error: str,
        *,
        host_failed: bool = True,
        host_wait: timedelta | None = None,
    ) -> None: ...

    async def give_up(self, job: DeliveryJob, status: int | None, error: str) -> None: ...

    async def release(self, jobs: Sequence[DeliveryJob]) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """Claims batches of due deliveries and posts them, a few at a time.

    `run_once()` is one step (tests call it directly); `run_forever()` is the
    production loop. Cancelling either records the outcomes already known and
    releases the leases of jobs still in flight, so a restart sends them at
    once instead of after the lease expires.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        http_session: aiohttp.ClientSession,
        *,
        allow_private: bool,
        limits: HttpLimits,
        batch_size: int = 50,
        concurrency: int = 8,
        lease: timedelta = timedelta(minutes=5),
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._queue = queue
        self._http = http_session
        self._allow_private = allow_private
        self._limits = limits
        self._batch_size = batch_size
        self._semaphore = asyncio.Semaphore(concurrency)
        self._lease = lease
        self._rng = rng or random.Random()
        self._clock = clock

    async def run_once(self) -> int:
        """Claim one batch, attempt every job in it, return how many were attempted."""
        jobs = await self._claim()
        if jobs:
            await self._deliver_batch(jobs)
        return len(jobs)

    async def run_forever(
        self, poll_interval: float = 1.0, wake: asyncio.Event | None = None
    ) -> None:
        """Deliver until cancelled; `wake` cuts the wait short when work is enqueued."""
        errors = 0
        while True:
            try:
                attempted = await self.run_once()
                errors = 0
            except Exception:
                errors += 1
                logger.exception("delivery round failed (%d in a row)", errors)
                await asyncio.sleep(min(poll_interval * 2**errors, 60.0))
                continue
            if attempted < self._batch_size:
                await _idle(poll_interval, wake)

    async def _claim(self) -> list[DeliveryJob]:
        """Claim a batch. Cancelled meanwhile, the claim still completes and its
        leases are released, so a worker going away leaves nothing locked behind.
        """
        claiming = asyncio.ensure_future(self._queue.claim(self._batch_size, self._lease))
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

    async def _deliver_batch(self, jobs: list[DeliveryJob]) -> None:
        settled: set[int] = set()
        recordings: list[asyncio.Future[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    group.create_task(self._deliver(job, settled, recordings))
        except asyncio.CancelledError:
            await self._stop_cleanly(jobs, settled, recordings)
            raise

    async def _stop_cleanly(
        self,
        jobs: list[DeliveryJob],
        settled: set[int],
        recordings: list[asyncio.Future[None]],
    ) -> None:
        """On cancellation: finish recording known outcomes, release the rest."""
        await asyncio.gather(*recordings, return_exceptions=True)
        await self._release([job for job in jobs if job.id not in settled])

    async def _release(self, jobs: list[DeliveryJob]) -> None:
        """Release leases while stopping. A failure here is logged, never raised:
        it must not replace the cancellation, and the leases lapse on their own.
        """
        if not jobs:
            return
        try:
            await self._queue.release(jobs)
        except Exception:
            logger.exception("could not release %d delivery leases", len(jobs))
            return
        logger.info("released %d in-flight deliveries on shutdown", len(jobs))

    async def _deliver(
        self, job: DeliveryJob, settled: set[int], recordings: list[asyncio.Future[None]]
    ) -> None:
        """Attempt one job. Once its answer is known, recording it is shielded
        from cancellation: an answered POST released for a re-send would arrive twice.
        """
        async with self._semaphore:
            outcome = await self._attempt(job)
        settled.add(job.id)
        recording = asyncio.ensure_future(self._record_logged(job, outcome))
        recordings.append(recording)
        await asyncio.shield(recording)

    async def _record_logged(self, job: DeliveryJob, outcome: Outcome) -> None:
        """Record, or log why not: the lease then lapses and the job is tried again,
        which is better than one database hiccup cancelling the rest of the batch.
        """
        try:
            await self._record(job, outcome)
        except Exception:
            logger.exception("could not record the outcome of delivery %s", job.id)

    async def _attempt(self, job: DeliveryJob) -> Outcome:
        try:
            result = await signed_post(
                self._http,
                job.target_inbox,
                job.body,
                key_id=job.key_id,
                private_key_pem=job.private_key_pem,
                allow_private=self._allow_private,
                limits=self._limits,
            )
        except FetchError as exc:
            return classify(exc)
        except Exception as exc:
            logger.exception("delivery %s to %s failed locally", job.id, job.target_inbox)
            return local_failure(exc)
        return classify(result)

    async def _record(self, job: DeliveryJob, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.DELIVERED:
            assert outcome.status is not None
            await self._queue.delivered(job, outcome.status)
            return
        if outcome.verdict is Verdict.RETRY:
            delay = retry_delay(outcome, job.attempts + 1, self._rng)
            if delay is not None:
                await self._retry(job, outcome, delay)
                return
        self._log_give_up(job, outcome)
        await self._queue.give_up(job, outcome.status, outcome.error)

    async def _retry(self, job: DeliveryJob, outcome: Outcome, delay: timedelta) -> None:
        at = self._clock() + delay
        logger.info(
            "delivery %s to %s failed (%s), retrying at %s",
            job.id,
            job.target_inbox,
            outcome.error,
            at.isoformat(timespec="seconds"),
        )
        await self._queue.retry(
            job,
            at,
            outcome.status,
            outcome.error,
            host_failed=outcome.blames_host,
            host_wait=outcome.retry_after,
        )

    def _log_give_up(self, job: DeliveryJob, outcome: Outcome) -> None:
        logger.warning(
            "giving up delivery %s of %s to %s after %d attempts: %s",
            job.id,
            job.activity_id,
            job.target_inbox,
            job.attempts + 1,
            outcome.error,
        )


async def _idle(poll_interval: float, wake: asyncio.Event | None) -> None:
    """Wait for the next poll, or less if woken. Clearing after the wait means a
    wake-up that arrives during a round is not lost: the next wait returns at once.
    """
    if wake is None:
        await asyncio.sleep(poll_interval)
        return
    try:
        async with asyncio.timeout(poll_interval):
            await wake.wait()
    except TimeoutError:
        pass
    wake.clear()
