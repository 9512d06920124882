"""Background work, for stewards: what the node is fetching for their community."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from node.api.paging import PageQuery, decode_cursor, encode_cursor
from node.api.router import api
from node.api.routing import ApiCall
from node.services.jobs import JobStatus, community_jobs_page, federation_jobs_page


class JobOut(BaseModel):
    id: str
    kind: str
    label: str
    status: Literal["waiting", "running", "retrying", "done", "failed", "cancelled"]
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


class JobList(BaseModel):
    items: list[JobOut]
    next: str | None


def job_to_api(job: JobStatus) -> JobOut:
    return JobOut.model_validate(job, from_attributes=True)


@api.route(
    "GET",
    "/jobs",
    summary="The community's background work (backfills, refreshes), newest first",
    tag="federation",
    auth="steward",
    query=PageQuery,
    response=JobList,
    errors=(400, 401, 403, 422),
)
async def list_jobs(call: ApiCall[None, PageQuery]) -> JobList:
    jobs, after = await community_jobs_page(
        call.session, call.me.community, decode_cursor(call.query.cursor), call.query.limit
    )
    return JobList(
        items=[job_to_api(job) for job in jobs],
        next=encode_cursor(after) if after is not None else None,
    )


@api.route(
    "GET",
    "/federation/jobs",
    summary="The community's background work and the node's own (crawls), newest first",
    tag="federation",
    auth="steward",
    query=PageQuery,
    response=JobList,
    errors=(400, 401, 403, 422),
)
async def list_federation_jobs(call: ApiCall[None, PageQuery]) -> JobList:
    jobs, after = await federation_jobs_page(
        call.session, call.me.community, decode_cursor(call.query.cursor), call.query.limit
    )
    return JobList(
        items=[job_to_api(job) for job in jobs],
        next=encode_cursor(after) if after is not None else None,
    )
