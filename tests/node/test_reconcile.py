"""Reconciliation repairs a mirror that missed deliveries, by paging the source again.

The round is a job: queued, then run by the node's job worker like any other.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from sqlalchemy import delete, select, update

from node.protocol.context import FederationContext
from node.protocol.job_handlers import enqueue_reconcile
from node.protocol.workers import JOB_WAKE
from storage.models import Job, Listing
from storage.repositories.jobs import decode
from tests.support.api import ApiClient, eventually
from tests.support.inprocess import PASSWORD, running_node


async def test_reconciliation_restores_missed_creates_and_drops_missed_deletes(
    tmp_path: Path,
) -> None:
    async with (
        running_node(tmp_path, "alder") as a,
        running_node(tmp_path, "birch") as b,
        aiohttp.ClientSession() as http,
    ):
        ctx_a, ctx_b = FederationContext.from_app(a), FederationContext.from_app(b)
        alice = await ApiClient(ctx_a.config.base_url, http).login("steward", PASSWORD)
        bob = await ApiClient(ctx_b.config.base_url, http).login("steward", PASSWORD)
        await alice.ok(
            "POST", "/api/v1/discovery/peers", expect=201, json={"url": ctx_b.config.base_url}
        )
        kept = await bob.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "offer", "title": "Kept", "is_public": True},
        )
        gone = await bob.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "offer", "title": "Gone", "is_public": True},
        )
        hidden = await bob.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "need", "title": "Missed", "visibility": "community"},
        )

        async def mirrored() -> None:
            assert await alice.titles("include_public=true") == {"Kept", "Gone"}

        await eventually(mirrored)
        async with ctx_b.sessions() as session:
            # Changes that never federate: as if the deliveries were lost.
            await session.execute(delete(Listing).where(Listing.id == gone["id"]))
            await session.execute(
                update(Listing)
                .where(Listing.id == hidden["id"])
                .values(visibility="public", is_public=True)
            )
            await session.commit()
        assert await alice.titles("include_public=true") == {"Kept", "Gone"}

        async with ctx_a.sessions() as session:
            assert await enqueue_reconcile(session)
            assert not await enqueue_reconcile(session)  # one round at a time
            await session.commit()
        a[JOB_WAKE].set()

        async def repaired() -> None:
            assert await alice.titles("include_public=true") == {"Kept", "Missed"}

        await eventually(repaired)
        assert kept["title"] == "Kept"
        async with ctx_a.sessions() as session:
            jobs = {job.kind: job for job in await session.scalars(select(Job))}
        assert jobs["reconcile"].state == "done"
        assert decode(jobs["reconcile"].progress)["backfills_queued"] == 1
