"""A partner collection of several pages: mirrored whole, and served page by page
only to signed fetches by an active partner. Real nodes: Birch shares more
than a page of partner listings with Alder; Cedar is a stranger."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.signatures import sign_request
from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import community_key, handle, propose_and_approve, state_of
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e

SHARED = 57  # more than one page of 50
AS_JSON = {"Accept": "application/activity+json"}


async def fetch(http: aiohttp.ClientSession, url: str, signer: Path | None) -> tuple[int, str]:
    headers = dict(AS_JSON)
    if signer is not None:
        key_id, pem = community_key(signer)
        headers = sign_request("GET", url, headers, None, key_id, pem)
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


def mirrored_partner_titles(data: Path) -> set[str]:
    rows = sqlite3.connect(data / "commons.db").execute(
        "SELECT title FROM remote_listings WHERE audience = 'partners'"
    )
    return {row[0] for row in rows}


async def backfill_progress(client: ApiClient) -> dict[str, Any]:
    jobs = (await client.ok("GET", "/api/v1/jobs"))["items"]
    [job] = [job for job in jobs if job["kind"] == "backfill"]
    assert job["status"] == "done", job
    return dict(job["progress"]["partners"])


async def test_a_partner_collection_of_several_pages_is_mirrored_whole_and_shown_only_to_partners(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster.start("alder"), cluster.start("birch"), cluster.start("cedar")
    alice, bob = await steward(a, http), await steward(b, http)
    titles = {f"Shared tool {n}" for n in range(SHARED)}
    for title in sorted(titles):  # the last one posted is the newest
        body = {"kind": "offer", "title": title, "visibility": "partners"}
        await bob.ok("POST", "/api/v1/listings", expect=201, json=body)
    for title, visibility in (("Birch public", "public"), ("Birch members", "community")):
        body = {"kind": "offer", "title": title, "visibility": visibility}
        await bob.ok("POST", "/api/v1/listings", expect=201, json=body)

    # Alder proposes: on Birch's Accept it pages Birch's partner collection (Birch,
    # the approving side, pushes nothing of its own), so only the walk brings them.
    await propose_and_approve(alice, bob, handle(b, "birch"))

    async def mirrored_whole() -> None:
        progress = await backfill_progress(alice)
        assert progress["kept"] == SHARED and progress["pages"] == 2
        assert progress["stopped_by"] is None

    await eventually(mirrored_whole)
    assert mirrored_partner_titles(a.data) == titles

    collection = f"{b.base_url}/c/birch/partner-listings"
    status, text = await fetch(http, collection, a.data)
    assert status == 200
    document = orjson.loads(text)
    assert document["type"] == "OrderedCollection"
    assert document["totalItems"] == SHARED and "orderedItems" not in document
    pages, url = [], document["first"]
    while url:
        status, text = await fetch(http, url, a.data)
        assert status == 200
        pages.append(orjson.loads(text))
        url = pages[-1].get("next")
    assert [len(page["orderedItems"]) for page in pages] == [50, SHARED - 50]
    served = [item["object"]["name"] for page in pages for item in page["orderedItems"]]
    assert sorted(served) == sorted(titles)
    assert served[0] == sorted(titles)[-1]  # newest first
    page_urls = [collection, document["first"], pages[0]["next"]]
    status, _ = await fetch(http, f"{collection}?page=true&after=not-a-position", a.data)
    assert status == 400

    async def nothing_for(signer: Path | None) -> None:
        for page_url in page_urls:
            status, text = await fetch(http, page_url, signer)
            assert status == 404, (page_url, signer)
            assert "Shared tool" not in text

    await nothing_for(None)  # unsigned
    await nothing_for(c.data)  # signed by a community that is no partner

    partnership = await state_of(alice, "active")
    await alice.ok("POST", f"/api/v1/partnerships/{partnership['id']}/dissolve")
    await eventually(lambda: state_of(bob, "dissolved"))
    await nothing_for(a.data)  # the partnership has ended
    await nothing_for(b.data)  # Birch's own key, not a partner of itself
