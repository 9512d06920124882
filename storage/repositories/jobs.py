"""The job queue as rows: enqueue once per piece of work, claim with a lease, record outcomes.

The same lease machinery as deliveries (`storage.repositories.deliveries`):
a claimed row carries `locked_until`, a worker that dies lets the lease
lapse, and on PostgreSQL the claim skips rows another worker is taking.
A running job renews its lease each time it reports progress, so a long
backfill is never taken over by a second worker while it is still moving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import dialect
from storage.models import Job, new_id, utcnow
from storage.paging import Position, page_after
from storage.states import JobState

QUEUED, DONE = JobState.QUEUED, JobState.DONE
FAILED, CANCELLED = JobState.FAILED, JobState.CANCELLED
FINISHED = (DONE, FAILED, CANCELLED)


def _unleased(now: datetime) -> ColumnElement[bool]:
    return or_(Job.locked_until.is_(None), Job.locked_until <= now)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def _json(value: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(value), option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


class JobRepository:
    """Queries for the job queue; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        community_id: int | None = None,
        subject: str | None = None,
        run_at: datetime | None = None,
        max_attempts: int = 8,
    ) -> bool:
        """Queue a job; False when the same unfinished work (`dedupe_key`) is already queued.

        Safe when two transactions ask for the same work at once: the unique
        `dedupe_key` lets exactly one row in.
        """
        now = utcnow()
        row = {
            "id": new_id(),
            "kind": kind,
            "state": QUEUED,
            "payload": _json(payload),
            "dedupe_key": dedupe_key,
            "community_id": community_id,
            "subject": subject,
            "attempts": 0,
            "max_attempts": max_attempts,
            "next_run_at": run_at or now,
            "progress": "{}",
            "created_at": now,
            "updated_at": now,
        }
        added = await dialect.insert_ignoring_conflicts(
            self.session, Job, [row], conflict_columns=("dedupe_key",)
        )
        return added == 1

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, kinds: Sequence[str]
    ) -> list[Job]:
        """Lease up to `limit` due jobs of `kinds`, the longest-waiting first."""
        due = (
            select(Job.id)
            .where(
                Job.state == QUEUED,
                Job.next_run_at <= now,
                Job.kind.in_(list(kinds)),
                _unleased(now),
            )
            .order_by(Job.next_run_at, Job.id)
            .limit(limit)
        )
        picked = dialect.claimable(self.session, due, of=Job, name="due_jobs")
        claim = (
            update(Job)
            .where(Job.id == picked.c.id, Job.state == QUEUED, _unleased(now))
            .values(locked_until=now + lease)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        ids = list((await self.session.execute(claim)).scalars())
        if not ids:
            return []
        rows = await self.session.scalars(
            select(Job)
            .where(Job.id.in_(ids))
            .order_by(Job.next_run_at, Job.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def report_progress(
        self, job_id: str, progress: Mapping[str, Any], now: datetime, lease: timedelta
    ) -> bool:
        """Store progress and renew the lease; False if the job was cancelled meanwhile."""
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED)
            .values(progress=_json(progress), updated_at=now, locked_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def _finish(self, job_id: str, now: datetime, **values: Any) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED)
            .values(attempts=Job.attempts + 1, locked_until=None, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def mark_done(self, job_id: str, now: datetime, progress: Mapping[str, Any]) -> bool:
        return await self._finish(
            job_id,
            now,
            state=DONE,
            progress=_json(progress),
            last_error=None,
            finished_at=now,
            dedupe_key=None,
        )

    async def mark_retry(self, job_id: str, now: datetime, at: datetime, error: str) -> bool:
        return await self._finish(job_id, now, next_run_at=at, last_error=error)

    async def mark_failed(self, job_id: str, now: datetime, error: str) -> bool:
        """Give up: the row stays, `failed`, for the steward to see; the work may be asked again."""
        return await self._finish(
            job_id, now, state=FAILED, last_error=error, finished_at=now, dedupe_key=None
        )

    async def release(self, job_ids: Sequence[str]) -> int:
        """Drop leases without counting an attempt (shutdown), so the jobs run again soon."""
        if not job_ids:
            return 0
        result = await self.session.execute(
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.state == QUEUED)
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def cancel(self, dedupe_key: str, reason: str) -> int:
        """Cancel the unfinished job doing `dedupe_key`'s work (its source went away)."""
        now = utcnow()
        result = await self.session.execute(
            update(Job)
            .where(Job.dedupe_key == dedupe_key, Job.state == QUEUED)
            .values(
                state=CANCELLED,
                last_error=reason,
                finished_at=now,
                updated_at=now,
                dedupe_key=None,
                locked_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def get(self, job_id: str) -> Job | None:
        return await self.session.get(Job, job_id)

    async def list_for_community(self, community_id: int, limit: int = 20) -> list[Job]:
        """The community's most recent jobs, unfinished first, for the steward's pages."""
        rows = await self.session.scalars(
            select(Job)
            .where(Job.community_id == community_id)
            .order_by((Job.state == QUEUED).desc(), Job.updated_at.desc(), Job.id)
            .limit(limit)
        )
        return list(rows)

    async def page_for_community(
        self, community_id: int, position: Position | None, limit: int
    ) -> list[Job]:
        """Newest first, keyset-paged: up to `limit + 1` rows after `position`."""
        query = select(Job).where(Job.community_id == community_id)
        rows = await self.session.scalars(
            page_after(query, Job.created_at, Job.id, position, limit)
        )
        return list(rows)

    async def page_for_community_and_node(
        self, community_id: int, position: Position | None, limit: int
    ) -> list[Job]:
        """As `page_for_community`, with the node-wide jobs (crawls) among them."""
        query = select(Job).where(or_(Job.community_id == community_id, Job.community_id.is_(None)))
        rows = await self.session.scalars(
            page_after(query, Job.created_at, Job.id, position, limit)
        )
        return list(rows)

    async def prune_finished(self, older_than: datetime) -> int:
        result = await self.session.execute(
            delete(Job).where(Job.state.in_(FINISHED), Job.updated_at < older_than)
        )
        return _rowcount(result)


def decode(text: str) -> dict[str, Any]:
    """A job's payload or progress as a dict (an unreadable one as empty)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
