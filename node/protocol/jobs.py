"""Durable background jobs: long network work that must not run while someone waits.

Modelled on Takahē's Stator: work is a row (`storage.models.Job`) with a
kind, a payload, attempts, a lease and a next run time. A request or an
inbox handler only queues the row, in its own transaction, and answers at
once; `JobWorker` claims due rows with the same lease machinery as
deliveries, runs a few at a time, and records the outcome: done, retried
with backoff, or failed for the steward to see. A job reports progress as it
goes, which both shows the steward how far it got and renews its lease.

A handler raises `RetryJob` (or a network error) to be tried again later and
`JobFailed` to give up at once; anything else is a bug, logged and retried
like a network error so that a transient database hiccup loses no work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.errors import FederationError
from storage.models import Job, utcnow
from storage.repositories.jobs import JobRepository, decode

log = logging.getLogger(__name__)

WAKE_JOBS = "wake_jobs"
"""Session-info flag: a commit that queued a job wakes the worker at once."""

DEFAULT_LEASE = timedelta(minutes=2)
_BACKOFF_SECONDS = (30, 120, 600, 1800, 7200, 21600, 43200, 86400)
"""From the first failure: half a minute (a restart), hours (a night), a day (a weekend)."""


class RetryJob(Exception):
    """The work could not be done now (the remote is down); try again later."""


class JobFailed(Exception):
    """The work can never succeed as asked; record the reason and stop."""


class JobCancelled(Exception):
    """The job was cancelled while it ran (its partnership ended); stop quietly."""


@dataclass
class JobRun:
    """One running job, as its handler sees it: the payload, and a way to report."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    progress: dict[str, Any] = field(default_factory=dict)
    _reporter: Callable[[JobRun], Awaitable[bool]] | None = None
    lease: timedelta = DEFAULT_LEASE
    clock: Callable[[], datetime] = utcnow

    async def report(self, **progress: Any) -> None:
        """Store progress and renew the lease; raises `JobCancelled` if the row was cancelled."""
        self.progress.update(progress)
        if self._reporter is not None and not await self._reporter(self):
            raise JobCancelled(self.id)

    async def record(self, session: AsyncSession, **progress: Any) -> None:
        """As `report`, in the caller's transaction, so that work and the position it
        reached commit together; raises `JobCancelled` (roll back) if the row was cancelled."""
        self.progress.update(progress)
        repo = JobRepository(session)
        if not await repo.report_progress(self.id, self.progress, self.clock(), self.lease):
            raise JobCancelled(self.id)


JobHandler = Callable[[JobRun], Awaitable[None]]


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Wait after the `attempts`-th failure, with ±20% jitter so retries do not bunch."""
    base = _BACKOFF_SECONDS[min(attempts, len(_BACKOFF_SECONDS)) - 1]
    return timedelta(seconds=base * rng.uniform(0.8, 1.2))


async def enqueue_job(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
    community_id: int | None = None,
    subject: str | None = None,
    run_at: datetime | None = None,
) -> bool:
    """Queue a job in the caller's transaction; its commit wakes the worker."""
    added = await JobRepository(session).enqueue(
        kind,
        payload,
        dedupe_key=dedupe_key,
        community_id=community_id,
        subject=subject,
        run_at=run_at,
    )
    if added:
        session.info[WAKE_JOBS] = True
    return added


class JobWorker:
    """Claims and runs jobs; `run_once()` for tests, `run_forever()` in production.

    `concurrency` jobs run at once, so one slow remote cannot hold up all
    the others, and inbox handling never waits on any of them.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int = 2,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self._lease = lease
        self._clock = clock
        self._rng = rng or random.Random()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`), run it, record outcomes; returns the count."""
        async with self._sessions() as session, session.begin():
            claimed = await JobRepository(session).claim_due(
                self._clock(), self._concurrency, self._lease, list(self._handlers)
            )
            runs = [_to_run(job, self._report, self._lease, self._clock) for job in claimed]
        if runs:
            await asyncio.gather(*(self._run(run) for run in runs))
        return len(runs)

    async def run_forever(self, poll_seconds: float, wake: asyncio.Event) -> None:
        """Claim and run until stopped. A claim that fails (SQLite locked past its
        busy timeout by a long write of another process, PostgreSQL gone for a
        moment) is logged and tried again at the next poll: it must not end the
        worker, which nothing would restart."""
        failures = 0
        while not self._stopping:
            try:
                ran = await self.run_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("claiming jobs failed (%d in a row)", failures)
                ran = 0
            if ran:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_seconds)

    async def _report(self, run: JobRun) -> bool:
        async with self._sessions() as session, session.begin():
            return await JobRepository(session).report_progress(
                run.id, run.progress, self._clock(), self._lease
            )

    async def _run(self, run: JobRun) -> None:
        """Run one job and record its outcome. When the outcome cannot be recorded (SQLite
        locked by a long write, PostgreSQL gone for a moment), the worker carries on: the
        job keeps its lease and simply runs again when the lease expires."""
        try:
            await self._run_and_record(run)
        except OperationalError as exc:
            log.warning(
                "job %s (%s): outcome not recorded, it runs again after its lease: %s",
                run.id,
                run.kind,
                exc.orig if exc.orig is not None else exc,
            )

    async def _run_and_record(self, run: JobRun) -> None:
        handler = self._handlers[run.kind]
        try:
            await handler(run)
        except asyncio.CancelledError:
            with contextlib.suppress(OperationalError):
                await asyncio.shield(self._release(run))
            raise
        except JobCancelled:
            log.info("job %s (%s) was cancelled while running", run.id, run.kind)
        except JobFailed as exc:
            await self._fail(run, str(exc))
        except (RetryJob, FederationError) as exc:
            await self._retry(run, str(exc))
        except Exception as exc:  # a bug or the database: logged, retried, not lost
            log.exception("job %s (%s) raised", run.id, run.kind)
            await self._retry(run, f"internal error: {type(exc).__name__}")
        else:
            await self._done(run)

    async def _done(self, run: JobRun) -> None:
        async with self._sessions() as session, session.begin():
            await JobRepository(session).mark_done(run.id, self._clock(), run.progress)

    async def _retry(self, run: JobRun, error: str) -> None:
        attempts = run.attempts + 1
        now = self._clock()
        async with self._sessions() as session, session.begin():
            repo = JobRepository(session)
            job = await repo.get(run.id)
            if job is not None and attempts >= job.max_attempts:
                await repo.mark_failed(run.id, now, f"gave up after {attempts} attempts: {error}")
                return
            await repo.mark_retry(run.id, now, now + backoff(attempts, self._rng), error)
        log.info("job %s (%s) will be retried: %s", run.id, run.kind, error)

    async def _fail(self, run: JobRun, error: str) -> None:
        async with self._sessions() as session, session.begin():
            await JobRepository(session).mark_failed(run.id, self._clock(), error)
        log.info("job %s (%s) failed: %s", run.id, run.kind, error)

    async def _release(self, run: JobRun) -> None:
        async with self._sessions() as session, session.begin():
            await JobRepository(session).release([run.id])


def _to_run(
    job: Job,
    reporter: Callable[[JobRun], Awaitable[bool]],
    lease: timedelta,
    clock: Callable[[], datetime],
) -> JobRun:
    return JobRun(
        id=job.id,
        kind=job.kind,
        payload=decode(job.payload),
        attempts=job.attempts,
        progress=decode(job.progress),
        _reporter=reporter,
        lease=lease,
        clock=clock,
    )
