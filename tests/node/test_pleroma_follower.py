"""A Pleroma account follows a community: its per-host LitePub context is read offline.

The remote side is a fake Pleroma on 127.0.0.1 serving the recorded actor
fixture (with a key we hold). Its documents name
`http://127.0.0.1:<port>/schemas/litepub-0.1.jsonld`, which the fake also
serves so that a fetch would be seen: the node must answer from its bundled
copy and never ask.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

import federation.contexts
from federation.keys import generate_key_pair
from node.protocol.context import FederationContext
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from tests.support.api import eventually
from tests.support.inprocess import running_node, serving
from tests.support.processes import free_port
from tests.support.recorded_server import RecordedServer, post_signed

LITEPUB_PATH = "/schemas/litepub-0.1.jsonld"
LITEPUB_COPY = Path(federation.contexts.__file__).parent / "litepub-0.1.json"
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()


@dataclass
class FakePleroma(RecordedServer):
    context_fetches: int = 0

    @property
    def actor_id(self) -> str:
        return f"{self.base}/users/mira"

    async def litepub_context(self, _request: web.Request) -> web.Response:
        self.context_fetches += 1
        return web.Response(body=LITEPUB_COPY.read_bytes(), content_type="application/ld+json")


@asynccontextmanager
async def fake_pleroma() -> AsyncIterator[FakePleroma]:
    port = free_port()
    fake = FakePleroma(
        f"http://127.0.0.1:{port}", "pleroma", "https://pleroma.example", PUBLIC_KEY, 200
    )
    app = web.Application()
    app.router.add_get("/users/mira", fake.actor)
    app.router.add_get(LITEPUB_PATH, fake.litepub_context)
    app.router.add_post("/users/mira/inbox", fake.inbox)
    app.router.add_post("/inbox", fake.inbox)
    async with serving(app, port):
        yield fake


async def followers_of(ctx: FederationContext, slug: str) -> list[str]:
    async with ctx.sessions() as session:
        community = await CommunityRepository(session).get_local_by_slug(slug)
        assert community is not None
        return [f.remote_actor for f in await FollowRepository(session).followers(community.id)]


async def test_pleroma_follow_naming_its_host_context_is_accepted_and_undone(
    tmp_path: Path,
) -> None:
    async with (
        running_node(tmp_path, "riverside") as node,
        fake_pleroma() as pleroma,
        aiohttp.ClientSession() as http,
    ):
        ctx = FederationContext.from_app(node)
        community = f"{ctx.config.base_url}/c/riverside"
        key_id = f"{pleroma.actor_id}#main-key"
        follow = pleroma.load("follow.json", community)
        assert follow["@context"][1] == f"{pleroma.base}{LITEPUB_PATH}"

        status, text = await post_signed(http, f"{community}/inbox", follow, key_id, PRIVATE_KEY)
        assert status == 202, text

        accept = await pleroma.first_received("Accept")
        assert accept["actor"] == community
        assert accept["object"]["id"] == follow["id"]
        assert accept["object"]["actor"] == pleroma.actor_id
        assert await followers_of(ctx, "riverside") == [pleroma.actor_id]

        undo = pleroma.load("undo_follow.json", community)
        status, text = await post_signed(http, f"{community}/inbox", undo, key_id, PRIVATE_KEY)
        assert status == 202, text

        async def unfollowed() -> None:
            assert await followers_of(ctx, "riverside") == []

        await eventually(unfollowed)
        assert pleroma.context_fetches == 0
