"""Background work as stewards see it: what is being fetched, how far it got, what failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, Job, utcnow
from storage.paging import Position
from storage.repositories import CommunityRepository
from storage.repositories.jobs import JobRepository, decode
from storage.states import JobState

_KIND_LABELS = {
    "backfill": "Copying shared listings",
    "refresh_actor": "Refreshing a community's profile",
    "reconcile": "Checking mirrors for missed changes",
    "crawl_peer": "Reading another node's communities",
    "refresh_directory": "Refreshing the directory of communities",
    "relay_fetch": "Fetching a listing a relay announced",
    "partner_push": "Sending our partner-only listings to a new partner",
    "partner_withdraw": "Withdrawing our partner-only listings from a former partner",
}


@dataclass(frozen=True)
class JobStatus:
    """One job for display: `status` is what a steward would call it, not the stored state."""

    id: str
    kind: str
    label: str
    status: str  # waiting | running | retrying | done | failed | cancelled
    subject: str | None
    subject_name: str | None
    attempts: int
    progress: dict[str, Any]
    summary: str
    last_error: str | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _status(job: Job, now: datetime) -> str:
    if job.state != JobState.QUEUED:
        return job.state
    if job.locked_until is not None and job.locked_until > now:
        return "running"
    return "retrying" if job.attempts else "waiting"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _sync_summary(progress: dict[str, Any]) -> str | None:
    if not isinstance(progress, dict) or "pages" not in progress:
        return None
    kept, pages = progress.get("kept", 0), progress["pages"]
    text = f"{_count(kept, 'listing')} from {_count(pages, 'page')}"
    stopped = progress.get("stopped_by")
    return f"{text}, stopped at the {stopped}" if stopped else text


def summarize(progress: dict[str, Any]) -> str:
    """A line of plain words for the progress a job reported."""
    if "skipped" in progress:
        return str(progress["skipped"])
    if "ignored" in progress:
        return f"Ignored: {progress['ignored']}"
    if "mirrored" in progress:
        return "Kept as a public listing"
    if "removed" in progress:
        return "Removed: its node no longer has it"
    parts = []
    if "queued" in progress:
        total = _count(progress.get("total", 0), "listing")
        parts.append(f"{progress['queued']} of {total} queued")
        if "stopped" in progress:
            parts.append(f"stopped: {progress['stopped']}")
    elif "stopped" in progress:
        parts.append(f"Stopped: {progress['stopped']}")
    for key, label in (("current", "so far"), ("public", "public"), ("partners", "partners")):
        line = _sync_summary(progress.get(key, {}))
        if line is not None:
            parts.append(f"{label}: {line}")
    if "backfills_queued" in progress:
        parts.append(f"{progress['backfills_queued']} sources queued for checking")
    if "communities" in progress:
        parts.append(
            f"{progress['communities']} "
            + ("community" if progress["communities"] == 1 else "communities")
            + " read"
            + (f", {progress['failed']} failed" if progress.get("failed") else "")
            + (
                f", {_count(progress['new_peers'], 'new node')}"
                if progress.get("new_peers")
                else ""
            )
        )
    if "crawls_queued" in progress:
        parts.append(f"{_count(progress['crawls_queued'], 'node')} queued for reading")
    return "; ".join(parts)


def job_status(job: Job, names: dict[str, str], now: datetime | None = None) -> JobStatus:
    progress = decode(job.progress)
    status = _status(job, now or utcnow())
    return JobStatus(
        id=job.id,
        kind=job.kind,
        label=_KIND_LABELS.get(job.kind, job.kind),
        status=status,
        subject=job.subject,
        subject_name=names.get(job.subject or ""),
        attempts=job.attempts,
        progress=progress,
        summary=summarize(progress),
        last_error=job.last_error,
        next_run_at=job.next_run_at if status in ("waiting", "retrying") else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


async def _names(session: AsyncSession, jobs: list[Job]) -> dict[str, str]:
    communities = CommunityRepository(session)
    names: dict[str, str] = {}
    for subject in {job.subject for job in jobs if job.subject}:
        remote = await communities.get_by_ap_id(subject)
        if remote is not None:
            names[subject] = remote.name
    return names


async def community_jobs_page(
    session: AsyncSession, community: Community, position: Position | None, limit: int
) -> tuple[list[JobStatus], Position | None]:
    """One page of the community's jobs, newest first, and where the next page starts."""
    rows = await JobRepository(session).page_for_community(community.id, position, limit)
    page = rows[:limit]
    names, now = await _names(session, page), utcnow()
    after = Position(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [job_status(job, names, now) for job in page], after


async def federation_jobs_page(
    session: AsyncSession, community: Community, position: Position | None, limit: int
) -> tuple[list[JobStatus], Position | None]:
    """As `community_jobs_page`, with the node-wide jobs (crawls, directory refreshes)."""
    rows = await JobRepository(session).page_for_community_and_node(community.id, position, limit)
    page = rows[:limit]
    names, now = await _names(session, page), utcnow()
    after = Position(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [job_status(job, names, now) for job in page], after


async def community_jobs(
    session: AsyncSession, community: Community, limit: int = 20
) -> list[JobStatus]:
    """The community's recent background work, unfinished first."""
    jobs = await JobRepository(session).list_for_community(community.id, limit)
    names, now = await _names(session, jobs), utcnow()
    return [job_status(job, names, now) for job in jobs]
