"""Reconciliation repairs a mirror that missed deliveries, by paging the source again."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from sqlalchemy import delete, update

from node.protocol.context import FederationContext
from node.protocol.reconcile import reconcile_once
from storage.models import Listing
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

        assert await reconcile_once(ctx_a) == 2
        assert await alice.titles("include_public=true") == {"Kept", "Missed"}
        assert kept["title"] == "Kept"
