"""The job worker: outcomes, retries with backoff, giving up, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.errors import FetchError
from node.protocol.jobs import JobFailed, JobHandler, JobRun, JobWorker, enqueue_job
from storage.engine import create_engine, create_session_factory
from storage.models import Job
from storage.repositories.jobs import JobRepository, decode

Sessions = async_sessionmaker[AsyncSession]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def queue(sessions: Sessions, clock: Clock, key: str | None = "work") -> None:
    async with sessions() as session, session.begin():
        await enqueue_job(session, "work", {"n": 1}, dedupe_key=key, run_at=clock())


async def the_job(sessions: Sessions) -> Job:
    async with sessions() as session:
        return (await session.scalars(select(Job))).one()


def worker(sessions: Sessions, handler: JobHandler, clock: Clock) -> JobWorker:
    return JobWorker(sessions, {"work": handler}, clock=clock, rng=random.Random(1))


async def test_a_job_reports_progress_and_ends_done(sessions: Sessions) -> None:
    clock = Clock()

    async def handler(run: JobRun) -> None:
        assert run.payload == {"n": 1}
        await run.report(pages=1)
        await run.report(pages=2, items=10)

    await queue(sessions, clock)
    assert await worker(sessions, handler, clock).run_once() == 1
    job = await the_job(sessions)
    assert job.state == "done" and decode(job.progress) == {"pages": 2, "items": 10}
    assert job.dedupe_key is None and job.finished_at is not None


async def test_a_network_failure_is_retried_later_with_backoff(sessions: Sessions) -> None:
    clock = Clock()
    calls = 0

    async def handler(run: JobRun) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise FetchError("503 from the partner", url="http://partner.test/outbox")

    await queue(sessions, clock)
    jobs = worker(sessions, handler, clock)
    await jobs.run_once()
    job = await the_job(sessions)
    assert job.state == "queued" and job.attempts == 1 and "503" in (job.last_error or "")
    assert timedelta(seconds=20) <= job.next_run_at - clock.now <= timedelta(seconds=40)
    assert await jobs.run_once() == 0  # not due yet
    clock.now = job.next_run_at
    assert await jobs.run_once() == 1
    assert (await the_job(sessions)).state == "done"


async def test_a_job_that_keeps_failing_is_given_up_for_the_steward_to_see(
    sessions: Sessions,
) -> None:
    clock = Clock()

    async def handler(run: JobRun) -> None:
        raise FetchError("connection refused", url="http://partner.test/outbox")

    await queue(sessions, clock)
    jobs = worker(sessions, handler, clock)
    for _ in range(8):
        clock.now += timedelta(days=2)
        assert await jobs.run_once() == 1
    job = await the_job(sessions)
    assert job.state == "failed" and job.attempts == 8
    assert "gave up after 8 attempts" in (job.last_error or "")
    clock.now += timedelta(days=2)
    assert await jobs.run_once() == 0


async def test_a_job_that_cannot_succeed_fails_at_once(sessions: Sessions) -> None:
    clock = Clock()

    async def handler(run: JobRun) -> None:
        raise JobFailed("the community is gone")

    await queue(sessions, clock)
    await worker(sessions, handler, clock).run_once()
    job = await the_job(sessions)
    assert job.state == "failed" and job.last_error == "the community is gone"


async def test_a_bug_in_a_handler_is_retried_not_lost(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()

    async def handler(run: JobRun) -> None:
        raise KeyError("oops")

    await queue(sessions, clock)
    await worker(sessions, handler, clock).run_once()
    job = await the_job(sessions)
    assert job.state == "queued" and job.last_error == "internal error: KeyError"
    assert "raised" in caplog.text


async def test_a_job_cancelled_while_running_stops_at_its_next_report(sessions: Sessions) -> None:
    clock = Clock()
    reached: list[int] = []

    async def handler(run: JobRun) -> None:
        await run.report(pages=1)
        reached.append(1)
        async with sessions() as session, session.begin():
            await JobRepository(session).cancel("work", "partnership ended")
        await run.report(pages=2)
        reached.append(2)

    await queue(sessions, clock)
    await worker(sessions, handler, clock).run_once()
    job = await the_job(sessions)
    assert reached == [1]
    assert job.state == "cancelled" and job.last_error == "partnership ended"


async def test_a_job_cut_off_by_shutdown_runs_again_without_losing_an_attempt(
    sessions: Sessions,
) -> None:
    clock = Clock()
    started = asyncio.Event()

    async def handler(run: JobRun) -> None:
        started.set()
        await asyncio.Event().wait()

    await queue(sessions, clock)
    task = asyncio.create_task(worker(sessions, handler, clock).run_once())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = await the_job(sessions)
    assert job.state == "queued" and job.attempts == 0 and job.locked_until is None


async def test_a_locked_database_when_recording_an_outcome_leaves_the_job_to_run_again(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    runs: list[int] = []

    async def handler(run: JobRun) -> None:
        runs.append(1)

    async def locked(*args: object, **kwargs: object) -> None:
        raise OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("database is locked"))

    await queue(sessions, clock)
    with monkeypatch.context() as patched:
        patched.setattr(JobRepository, "mark_done", locked)
        assert await worker(sessions, handler, clock).run_once() == 1  # the worker lives on
    leased = await the_job(sessions)
    assert leased.state == "queued" and leased.locked_until is not None

    clock.now += timedelta(minutes=10)  # past the lease
    assert await worker(sessions, handler, clock).run_once() == 1
    assert runs == [1, 1]
    assert (await the_job(sessions)).state == "done"


async def test_a_locked_database_when_claiming_does_not_end_the_worker(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    runs: list[int] = []
    claim_due = JobRepository.claim_due
    refusals = [1, 1]

    async def handler(run: JobRun) -> None:
        runs.append(1)

    async def sometimes_locked(self: JobRepository, *args: object, **kwargs: object) -> object:
        if refusals:
            refusals.pop()
            raise OperationalError(
                "UPDATE jobs", {}, sqlite3.OperationalError("database is locked")
            )
        return await claim_due(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(JobRepository, "claim_due", sometimes_locked)
    await queue(sessions, clock)
    jobs = worker(sessions, handler, clock)
    running = asyncio.create_task(jobs.run_forever(0.01, asyncio.Event()))
    try:
        for _ in range(500):
            if runs:
                break
            await asyncio.sleep(0.01)
    finally:
        jobs.stop()
        await asyncio.wait_for(running, 5)
    assert runs == [1] and not refusals
    assert (await the_job(sessions)).state == "done"
