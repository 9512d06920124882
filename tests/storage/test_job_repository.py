"""The job queue's rows and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory, is_sqlite
from storage.models import Job
from storage.repositories.jobs import JobRepository, decode

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def enqueue(sessions: Sessions, key: str | None = "backfill:1:2", **kwargs: object) -> bool:
    async with sessions() as session, session.begin():
        return await JobRepository(session).enqueue(
            "backfill", {"local_id": 1}, dedupe_key=key, run_at=T0, **kwargs
        )


async def claim(sessions: Sessions, now: datetime = T0, limit: int = 10) -> list[Job]:
    async with sessions() as session, session.begin():
        return await JobRepository(session).claim_due(now, limit, LEASE, ["backfill"])


async def test_the_same_unfinished_work_is_queued_once(sessions: Sessions) -> None:
    assert await enqueue(sessions)
    assert not await enqueue(sessions)
    assert await enqueue(sessions, key="backfill:1:3")
    assert await enqueue(sessions, key=None)
    assert await enqueue(sessions, key=None)
    assert len(await claim(sessions)) == 4


async def test_finished_work_can_be_asked_for_again(sessions: Sessions) -> None:
    await enqueue(sessions)
    [job] = await claim(sessions)
    async with sessions() as session, session.begin():
        assert await JobRepository(session).mark_done(job.id, T0, {"items": 3})
    assert await enqueue(sessions)
    async with sessions() as session:
        done = await JobRepository(session).get(job.id)
    assert done is not None and done.state == "done" and decode(done.progress) == {"items": 3}


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_lapses(
    sessions: Sessions,
) -> None:
    await enqueue(sessions)
    assert len(await claim(sessions)) == 1
    assert await claim(sessions, T0 + LEASE - timedelta(seconds=1)) == []
    assert len(await claim(sessions, T0 + LEASE + timedelta(seconds=1))) == 1


async def test_reporting_progress_renews_the_lease(sessions: Sessions) -> None:
    await enqueue(sessions)
    [job] = await claim(sessions)
    later = T0 + LEASE - timedelta(seconds=5)
    async with sessions() as session, session.begin():
        assert await JobRepository(session).report_progress(job.id, {"pages": 1}, later, LEASE)
    assert await claim(sessions, T0 + LEASE + timedelta(seconds=1)) == []
    assert len(await claim(sessions, later + LEASE + timedelta(seconds=1))) == 1


async def test_a_cancelled_job_stops_at_its_next_report_and_is_not_run_again(
    sessions: Sessions,
) -> None:
    await enqueue(sessions)
    [job] = await claim(sessions)
    async with sessions() as session, session.begin():
        assert await JobRepository(session).cancel("backfill:1:2", "partnership ended") == 1
    async with sessions() as session, session.begin():
        repo = JobRepository(session)
        assert not await repo.report_progress(job.id, {"pages": 2}, T0, LEASE)
        assert not await repo.mark_done(job.id, T0, {})
    assert await claim(sessions, T0 + timedelta(hours=1)) == []
    assert await enqueue(sessions)  # the key is free again


async def test_retry_counts_an_attempt_and_waits(sessions: Sessions) -> None:
    await enqueue(sessions)
    [job] = await claim(sessions)
    async with sessions() as session, session.begin():
        await JobRepository(session).mark_retry(job.id, T0, T0 + timedelta(minutes=5), "503")
    assert await claim(sessions, T0 + timedelta(minutes=4)) == []
    [again] = await claim(sessions, T0 + timedelta(minutes=5))
    assert again.attempts == 1 and again.last_error == "503"


async def test_released_jobs_run_again_at_once_without_an_attempt(sessions: Sessions) -> None:
    await enqueue(sessions)
    [job] = await claim(sessions)
    async with sessions() as session, session.begin():
        assert await JobRepository(session).release([job.id]) == 1
    [again] = await claim(sessions)
    assert again.attempts == 0


async def test_two_workers_never_claim_the_same_job(sessions: Sessions, database_url: str) -> None:
    for n in range(20):
        await enqueue(sessions, key=f"backfill:{n}")
    if is_sqlite(database_url):
        results = [await claim(sessions, limit=7) for _ in range(4)]
    else:
        results = await asyncio.gather(*(claim(sessions, limit=7) for _ in range(4)))
    ids = [job.id for batch in results for job in batch]
    assert len(ids) == len(set(ids)) == 20


async def test_finished_jobs_are_pruned_and_unfinished_ones_kept(sessions: Sessions) -> None:
    await enqueue(sessions)
    await enqueue(sessions, key="other")
    jobs = await claim(sessions)
    async with sessions() as session, session.begin():
        repo = JobRepository(session)
        await repo.mark_failed(jobs[0].id, T0, "gone")
        await repo.release([jobs[1].id])
    async with sessions() as session, session.begin():
        assert await JobRepository(session).prune_finished(datetime.now(UTC) + timedelta(1)) == 1
    assert len(await claim(sessions)) == 1
