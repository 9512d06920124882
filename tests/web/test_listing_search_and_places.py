"""Listing pages on both databases: search, paging, my listings, and what a place gives away.

These run on the `node` fixture (SQLite and PostgreSQL), since text search
and keyset paging are the parts whose SQL differs between the two.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import select

from node.appkeys import SESSIONS
from node.web import listings_pages
from storage.models import Community, CommunityPartnership, Delivery, Listing, utcnow
from storage.repositories import CommunityRepository
from tests.conftest import PASSWORD, NodeHandle
from tests.web.conftest import Browser

OFFER = {"kind": "offer", "description": ""}
EXACT = ("51.507215", "-0.127586")


@dataclass
class NodeBrowser(Browser):
    """The web tests' browser, on a node whose address is not the web tests' default."""

    origin: str = ""

    async def post(self, path: str, data: dict[str, str]) -> ClientResponse:
        headers = {"Origin": self.origin}
        return await self.client.post(path, data=data, headers=headers, allow_redirects=False)

    async def sign_in(self, username: str, password: str = PASSWORD) -> ClientResponse:
        return await self.post("/signin", {"username": username, "password": password})


@pytest.fixture
async def pages(node: NodeHandle) -> NodeBrowser:
    for name in ("max", "olga"):
        await node.add_member(name)
    browser = NodeBrowser(node.client, origin=node.config.base_url)
    await browser.become("max")
    return browser


async def post(pages: NodeBrowser, title: str, **fields: str) -> str:
    response = await pages.submit(
        "/listings/new", {**OFFER, "title": title, **fields}, form_page="/listings/new"
    )
    assert response.status == 303, await response.text()
    return response.headers["Location"].rsplit("/", 1)[1]


def titles(page: str) -> list[str]:
    found = re.findall(r'<h2 class="listing-card__title"><a href="[^"]+">([^<]+)</a>', page)
    return [html.unescape(title) for title in found]


async def text_of(pages: NodeBrowser, path: str) -> str:
    response = await pages.get(path)
    assert response.status == 200, path
    return await response.text()


async def test_search_finds_words_and_keeps_every_filter_in_the_url(pages: NodeBrowser) -> None:
    await post(pages, "Aluminium ladder", description="Three metres, folds flat")
    await post(pages, "Folding table")
    await post(pages, "Bread maker", kind="need")
    closed = await post(pages, "Old wooden ladder")
    await pages.submit(f"/listings/{closed}/close", {})

    page = await text_of(pages, "/listings?q=ladder")
    assert titles(page) == ["Aluminium ladder"]
    assert '<input id="q" name="q" type="search" value="ladder"' in page
    assert titles(await text_of(pages, "/listings?q=ladder&closed=yes")) == [
        "Old wooden ladder",
        "Aluminium ladder",
    ]
    assert titles(await text_of(pages, "/listings?q=fold")) == ["Folding table", "Aluminium ladder"]
    assert titles(await text_of(pages, "/listings?q=fold&kind=need")) == []
    # The tabs carry the search along.
    assert 'href="/listings/mine?q=ladder"' in page
    assert 'href="/network?q=ladder"' in page


async def test_paging_walks_every_match_once_with_the_search_kept(
    pages: NodeBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listings_pages, "PAGE_SIZE", 2)
    for n in range(5):
        await post(pages, f"Drill number {n}")
    await post(pages, "Hammer")
    seen: list[str] = []
    path: str | None = "/listings?q=drill"
    while path is not None:
        page = await text_of(pages, path)
        seen += titles(page)
        match = re.search(r'<a class="button" href="([^"]+)" rel="next">', page)
        path = match.group(1).replace("&amp;", "&") if match else None
        if path is not None:
            assert "q=drill" in path
    assert seen == [f"Drill number {n}" for n in reversed(range(5))]


async def test_bad_cursor_is_a_clear_400(pages: NodeBrowser) -> None:
    response = await pages.get("/listings?cursor=not-a-cursor")
    assert response.status == 400


async def test_my_listings_are_mine_only(pages: NodeBrowser) -> None:
    await post(pages, "Max's saw")
    await pages.become("olga")
    await post(pages, "Olga's sander")
    page = await text_of(pages, "/listings/mine")
    assert titles(page) == ["Olga's sander"]
    assert '<a class="scope-switch__option" href="/listings/mine" aria-current="page">' in page
    assert titles(await text_of(pages, "/listings")) == ["Olga's sander", "Max's saw"]


async def test_the_api_searches_the_same_way(pages: NodeBrowser, node: NodeHandle) -> None:
    await post(pages, "Pressure washer")
    await post(pages, "Garden hose")
    headers = {"Authorization": f"Bearer {await node.token('max')}"}
    response = await node.client.get("/api/v1/listings?q=washer", headers=headers)
    assert response.status == 200
    assert [x["title"] for x in (await response.json())["items"]] == ["Pressure washer"]


async def test_the_old_network_page_sends_its_filters_to_the_network_page(
    pages: NodeBrowser,
) -> None:
    response = await pages.get("/listings/network?scope=partners&kind=offer&category=tools")
    assert response.status == 301
    assert response.headers["Location"] == "/network?kind=offer&category=tools&origin=partner"
    response = await pages.get("/listings/network?scope=public&q=ladder")
    assert response.headers["Location"] == "/network?q=ladder"


# ---------- what a place gives away ----------


async def add_partner(node: NodeHandle) -> None:
    base = "http://127.0.0.1:9"
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(node.config.slug)
        assert local is not None
        remote = Community(
            ap_id=f"{base}/c/hillside",
            is_local=False,
            slug="hillside",
            host="127.0.0.1:9",
            name="Hillside Commons",
            base_url=base,
            inbox_url=f"{base}/c/hillside/inbox",
            shared_inbox_url=f"{base}/inbox",
            fetched_at=utcnow(),
        )
        db.add(remote)
        await db.flush()
        db.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state="active",
                initiated_by="us",
                follow_activity_id=f"{node.config.base_url}/activities/partnership-1",
            )
        )
        await db.commit()


async def delivered_places(node: NodeHandle, listing_id: str) -> list[dict[str, Any]]:
    async with node.client.app[SESSIONS]() as db:
        bodies = (
            await db.scalars(select(Delivery.body).where(Delivery.listing_id == listing_id))
        ).all()
    assert bodies, "nothing was queued for the partner"
    return [json.loads(body)["object"]["location"] for body in bodies]


@pytest.mark.parametrize(
    ("precision", "shared"),
    [
        ("exact", {"latitude": 51.51, "longitude": -0.13, "radius": 1000}),
        ("neighbourhood", {"latitude": 51.51, "longitude": -0.13, "radius": 1000}),
        ("area", {"latitude": 51.5, "longitude": -0.1, "radius": 10000}),
    ],
)
async def test_only_a_coarse_point_leaves_the_node(
    pages: NodeBrowser, node: NodeHandle, precision: str, shared: dict[str, float]
) -> None:
    await add_partner(node)
    listing_id = await post(
        pages,
        "Cargo bike",
        visibility="partners",
        place="point",
        latitude=EXACT[0],
        longitude=EXACT[1],
        precision=precision,
    )
    for place in await delivered_places(node, listing_id):
        assert place == {"type": "Place", "units": "m", **shared}

    # The same for a public listing fetched as an object by anyone on the network.
    await pages.submit(
        f"/listings/{listing_id}/edit",
        {
            **OFFER,
            "title": "Cargo bike",
            "visibility": "public",
            "place": "point",
            "latitude": EXACT[0],
            "longitude": EXACT[1],
            "precision": precision,
        },
    )
    async with node.client.app[SESSIONS]() as db:
        listing = await db.get(Listing, listing_id)
        assert listing is not None
        ap_id = listing.ap_id
    path = ap_id.removeprefix(node.config.base_url)
    response = await node.client.get(path, headers={"Accept": "application/activity+json"})
    assert response.status == 200
    document = await response.text()
    assert json.loads(document)["location"] == {"type": "Place", "units": "m", **shared}
    assert "51.5072" not in document and "0.1275" not in document
