"""A Mastodon account follows a community and reads its public listings as posts.

The remote side is a fake Mastodon on 127.0.0.1 that serves the recorded actor
fixture (with a key we hold) and records what reaches its inboxes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from federation.keys import generate_key_pair
from federation.vocab import PUBLIC
from node.protocol.context import FederationContext
from tests.support.api import ApiClient, eventually
from tests.support.inprocess import PASSWORD, running_node, serving
from tests.support.processes import free_port
from tests.support.recorded_server import RecordedServer, post_signed

PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()


@asynccontextmanager
async def fake_mastodon() -> AsyncIterator[RecordedServer]:
    port = free_port()
    fake = RecordedServer(
        f"http://127.0.0.1:{port}", "mastodon", "https://mastodon.example", PUBLIC_KEY
    )
    app = web.Application()
    app.router.add_get("/users/alice", fake.actor)
    app.router.add_post("/users/alice/inbox", fake.inbox)
    app.router.add_post("/inbox", fake.inbox)
    async with serving(app, port):
        yield fake


async def test_mastodon_user_follows_reads_public_listings_and_unfollows(tmp_path: Path) -> None:
    async with (
        running_node(tmp_path, "riverside") as node,
        fake_mastodon() as mastodon,
        aiohttp.ClientSession() as http,
    ):
        ctx = FederationContext.from_app(node)
        community = f"{ctx.config.base_url}/c/riverside"
        key_id = f"{mastodon.base}/users/alice#main-key"
        follow = mastodon.load("follow.json", community)
        status, answer = await post_signed(http, f"{community}/inbox", follow, key_id, PRIVATE_KEY)
        assert status == 202, answer

        accept = await mastodon.first_received("Accept")
        assert accept["actor"] == community
        assert accept["object"]["id"] == follow["id"]

        steward = await ApiClient(ctx.config.base_url, http).login("steward", PASSWORD)
        await steward.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "offer", "title": "Secret stash", "visibility": "community"},
        )
        await steward.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={
                "kind": "offer",
                "title": "Tall ladder",
                "description": "Three metres.",
                "is_public": True,
            },
        )

        create = await mastodon.first_received("Create")
        note = create["object"]
        assert note["type"] == "Note"
        assert note["attributedTo"] == community
        assert PUBLIC in note["to"]
        assert note["content"].startswith("<p><strong>Tall ladder</strong></p>")
        assert "Three metres." in note["content"]
        assert "summary" not in note
        assert all("Secret stash" not in json.dumps(a) for a in mastodon.received)

        undo = mastodon.load("undo_follow.json", community)
        status, answer = await post_signed(http, f"{community}/inbox", undo, key_id, PRIVATE_KEY)
        assert status == 202, answer

        async def unfollowed() -> None:
            followers = await http.get(f"{community}/followers")
            assert (await followers.json(content_type=None))["totalItems"] == 0

        await eventually(unfollowed)
        before = len(mastodon.received)
        await steward.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "need", "title": "After unfollow", "is_public": True},
        )
        async with ctx.sessions() as session:
            pending = await session.execute(
                __import__("sqlalchemy").text(
                    "SELECT count(*) FROM deliveries WHERE body LIKE '%After unfollow%'"
                )
            )
            assert pending.scalar_one() == 0
        assert len(mastodon.received) == before
