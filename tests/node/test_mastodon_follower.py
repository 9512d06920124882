"""A Mastodon account follows a community and reads its public listings as posts.

The remote side is a fake Mastodon on 127.0.0.1 that serves the recorded actor
fixture (with a key we hold) and records what reaches its inboxes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from federation.keys import generate_key_pair
from federation.signatures import sign_request
from federation.vocab import PUBLIC
from node.protocol.context import FederationContext
from tests.support.api import ApiClient, eventually
from tests.support.inprocess import PASSWORD, running_node, serving
from tests.support.processes import free_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()


@dataclass
class FakeMastodon:
    base: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def load(self, name: str, community: str) -> dict[str, Any]:
        text = (FIXTURES / name).read_text()
        text = text.replace("https://mastodon.example", self.base)
        text = text.replace("https://commons.example/c/riverside", community)
        return dict(json.loads(text))

    async def actor(self, _request: web.Request) -> web.Response:
        document = self.load("actor.json", "")
        document["publicKey"]["publicKeyPem"] = PUBLIC_KEY
        return web.json_response(document, content_type="application/activity+json")

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append(orjson.loads(await request.read()))
        return web.Response(status=202)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [activity for activity in self.received if activity["type"] == kind]


@asynccontextmanager
async def fake_mastodon() -> AsyncIterator[FakeMastodon]:
    port = free_port()
    fake = FakeMastodon(f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_get("/users/alice", fake.actor)
    app.router.add_post("/users/alice/inbox", fake.inbox)
    app.router.add_post("/inbox", fake.inbox)
    async with serving(app, port):
        yield fake


async def post_signed(
    http: aiohttp.ClientSession, url: str, activity: dict[str, Any], key_id: str
) -> int:
    body = orjson.dumps(activity)
    headers = sign_request(
        "POST", url, {"Content-Type": "application/activity+json"}, body, key_id, PRIVATE_KEY
    )
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status


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
        assert await post_signed(http, f"{community}/inbox", follow, key_id) == 202

        async def accepted() -> dict[str, Any]:
            accepts = mastodon.of_type("Accept")
            assert accepts, mastodon.received
            return accepts[0]

        accept = await eventually(accepted)
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

        async def posted() -> dict[str, Any]:
            creates = mastodon.of_type("Create")
            assert creates, mastodon.received
            return creates[0]

        create = await eventually(posted)
        note = create["object"]
        assert note["type"] == "Note"
        assert note["attributedTo"] == community
        assert PUBLIC in note["to"]
        assert note["content"].startswith("<p><strong>Tall ladder</strong></p>")
        assert "Three metres." in note["content"]
        assert "summary" not in note
        assert all("Secret stash" not in json.dumps(a) for a in mastodon.received)

        undo = mastodon.load("undo_follow.json", community)
        assert await post_signed(http, f"{community}/inbox", undo, key_id) == 202

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
