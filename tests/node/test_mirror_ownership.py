"""Two actors on one host cannot rewrite or freeze each other's mirrored listings.

A real node (served on 127.0.0.1, on SQLite and PostgreSQL) learns a fake
host that serves two communities with their own keys, `victim` and
`mallory`, and follows both, as a steward adding that host as a peer does.
Mallory then signs, with its own valid key, activities about the victim's
listing; the node must keep what the victim said, and the victim's later
updates must still land.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from federation.builders import (
    build_activity,
    build_actor_document,
    build_note,
    ordered_collection,
)
from federation.inbox_processor import InboundActivity, InboxProcessor, Outcome, QueuedActivity
from federation.keys import generate_key_pair
from federation.signatures import sign_request
from federation.vocab import PUBLIC
from node.app import init_app
from node.appkeys import SESSIONS
from node.config import write_config
from node.protocol.handlers import inbox_handlers
from node.protocol.listing_batches import ListingBatch
from node.services.accounts import create_member
from storage.engine import create_engine, create_session_factory
from storage.models import InboxEntry, RemoteListing, new_id
from storage.repositories import CommunityRepository
from tests.conftest import create_node_community
from tests.support.api import ApiClient, eventually
from tests.support.inprocess import serving
from tests.support.processes import free_port

ServerFactory = Callable[..., Awaitable[TestServer]]
ACTIVITY_JSON = "application/activity+json"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
PASSWORD = "steward-password"
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    return {"victim": generate_key_pair(), "mallory": generate_key_pair()}


@dataclass
class FakeHost:
    """One server, two Group actors with keys of their own, and an inbox that says yes."""

    keys: dict[str, tuple[str, str]]
    server: TestServer | None = None
    http: aiohttp.ClientSession | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def actor(self, slug: str) -> str:
        return f"{self.base}/c/{slug}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/nodeinfo", self.nodeinfo_links)
        app.router.add_get("/nodeinfo/2.1", self.nodeinfo)
        app.router.add_get("/c/{slug}", self.actor_document)
        app.router.add_get("/c/{slug}/outbox", self.outbox)
        app.router.add_post("/{tail:.*}", self.inbox)
        return app

    async def nodeinfo_links(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"links": [{"rel": NODEINFO_REL, "href": f"{self.base}/nodeinfo/2.1"}]}
        )

    async def nodeinfo(self, _request: web.Request) -> web.Response:
        communities = [{"id": self.actor(slug)} for slug in self.keys]
        return web.json_response({"version": "2.1", "metadata": {"communities": communities}})

    async def actor_document(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        if slug not in self.keys:
            raise web.HTTPNotFound()
        actor = self.actor(slug)
        document = build_actor_document(
            actor_id=actor,
            preferred_username=slug,
            name=slug.title(),
            description="",
            inbox=f"{actor}/inbox",
            outbox=f"{actor}/outbox",
            followers=f"{actor}/followers",
            shared_inbox=f"{self.base}/inbox",
            public_key_pem=self.keys[slug][1],
            url=actor,
        )
        return web.json_response(document, content_type=ACTIVITY_JSON)

    async def outbox(self, request: web.Request) -> web.Response:
        outbox = f"{self.actor(request.match_info['slug'])}/outbox"
        document = ordered_collection(outbox, total_items=0, ordered_items=[])
        return web.json_response(document, content_type=ACTIVITY_JSON)

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append(orjson.loads(await request.read()))
        return web.Response(status=202)

    async def send(self, node: str, slug: str, activity_type: str, note: dict[str, Any]) -> str:
        """POST a signed activity from actor `slug` to the node's shared inbox."""
        assert self.http is not None
        actor = self.actor(slug)
        activity = build_activity(
            activity_type, f"{actor}/activities/{new_id()}", actor, note, to=[PUBLIC]
        )
        body = orjson.dumps(activity)
        url = f"{node}/inbox"
        headers = sign_request(
            "POST",
            url,
            {"Content-Type": ACTIVITY_JSON},
            body,
            f"{actor}#main-key",
            self.keys[slug][0],
        )
        async with self.http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 202, await resp.text()
        return str(activity["id"])


def note(
    note_id: str,
    attributed_to: str | None,
    title: str,
    *,
    published: datetime | None = None,
    updated: datetime | None = None,
) -> dict[str, Any]:
    document = build_note(
        note_id=note_id,
        attributed_to=attributed_to or "",
        title=title,
        description="",
        to=[PUBLIC],
        cc=[],
        published=published or datetime.now(UTC) - timedelta(minutes=5),
        updated=updated,
        kind="offer",
        visibility="public",
    )
    if attributed_to is None:
        del document["attributedTo"]
    return document


@dataclass
class LiveNode:
    app: web.Application
    base_url: str
    steward: ApiClient

    async def entry(self, activity_id: str) -> tuple[str, str | None]:
        async with self.app[SESSIONS]() as session:
            row = await session.scalar(
                select(InboxEntry).where(InboxEntry.activity_id == activity_id)
            )
        assert row is not None and row.state not in ("received", "processing"), row
        return row.state, row.error

    async def cached(self, ap_id: str) -> tuple[str, str, datetime | None] | None:
        """(title, origin actor, remote_updated_at) of the mirrored copy."""
        async with self.app[SESSIONS]() as session:
            row = await session.scalar(select(RemoteListing).where(RemoteListing.ap_id == ap_id))
            if row is None:
                return None
            return row.title, row.origin_community.ap_id, row.remote_updated_at


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake(
    aiohttp_server: ServerFactory, keys: dict[str, tuple[str, str]], http: aiohttp.ClientSession
) -> FakeHost:
    host = FakeHost(keys, http=http)
    host.server = await aiohttp_server(host.app())
    return host


@pytest.fixture
async def node(
    tmp_path: Path, database_url: str, http: aiohttp.ClientSession, fake: FakeHost
) -> AsyncIterator[LiveNode]:
    """A node whose community follows both of the fake host's communities."""
    port = free_port()
    data = tmp_path / "node"
    data.mkdir()
    base_url = f"http://127.0.0.1:{port}"
    config = write_config(
        data,
        base_url=base_url,
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    )
    community = await create_node_community(config)
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            local = await CommunityRepository(session).get(community.id)
            assert local is not None
            await create_member(session, local, "steward", PASSWORD, "steward")
            await session.commit()
    finally:
        await engine.dispose()
    app = init_app(config)
    async with serving(app, port):
        steward = await ApiClient(base_url, http).login("steward", PASSWORD)
        await steward.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": fake.base})
        yield LiveNode(app, base_url, steward)


async def outcome(
    node: LiveNode, fake: FakeHost, slug: str, activity_type: str, document: dict[str, Any]
) -> str:
    """Send as `slug`, wait for the node to handle it; `handled` or `ignored`."""
    sent = await fake.send(node.base_url, slug, activity_type, document)
    state, _ = await eventually(lambda: node.entry(sent))
    return state


@pytest.mark.parametrize("under", ["/c/victim/listings", "/notes"])
async def test_another_actor_on_the_same_host_cannot_overwrite_or_freeze_a_listing(
    node: LiveNode, fake: FakeHost, under: str
) -> None:
    """Whether or not the listing's id is under its actor's, it is the victim's."""
    victim, mallory = fake.actor("victim"), fake.actor("mallory")
    ladder = f"{fake.base}{under}/{new_id()}"
    original = note(ladder, victim, "Ladder")
    assert await outcome(node, fake, "victim", "Create", original) == "handled"

    attacks = (("Update", mallory), ("Update", None), ("Create", mallory))
    for activity_type, attributed_to in attacks:
        document = note(ladder, attributed_to, "Hijacked ladder", updated=FAR_FUTURE)
        assert await outcome(node, fake, "mallory", activity_type, document) == "ignored"
    cached = await node.cached(ladder)
    assert cached is not None and cached[:2] == ("Ladder", victim)

    repaired = note(ladder, victim, "Ladder, repaired", updated=datetime.now(UTC))
    assert await outcome(node, fake, "victim", "Update", repaired) == "handled"
    cached = await node.cached(ladder)
    assert cached is not None and cached[:2] == ("Ladder, repaired", victim)


async def test_a_listing_under_another_actors_id_or_unattributed_is_not_mirrored(
    node: LiveNode, fake: FakeHost
) -> None:
    victim, mallory = fake.actor("victim"), fake.actor("mallory")
    squatted = note(f"{victim}/listings/{new_id()}", mallory, "Squatted")
    unattributed = note(f"{mallory}/listings/{new_id()}", None, "Unattributed")
    for document in (squatted, unattributed):
        assert await outcome(node, fake, "mallory", "Create", document) == "ignored"
        assert await node.cached(document["id"]) is None
    own = note(f"{mallory}/listings/{new_id()}", mallory, "Mallory's own drill")
    assert await outcome(node, fake, "mallory", "Create", own) == "handled"


async def test_a_future_updated_is_clamped_so_later_updates_still_land(
    node: LiveNode, fake: FakeHost
) -> None:
    victim = fake.actor("victim")
    ladder = f"{victim}/listings/{new_id()}"
    first = note(ladder, victim, "Ladder v1", published=FAR_FUTURE, updated=FAR_FUTURE)
    assert await outcome(node, fake, "victim", "Create", first) == "handled"
    cached = await node.cached(ladder)
    assert cached is not None and cached[2] is not None
    assert cached[2] <= datetime.now(UTC)

    second = note(ladder, victim, "Ladder v2", updated=datetime.now(UTC) + timedelta(seconds=1))
    assert await outcome(node, fake, "victim", "Update", second) == "handled"
    cached = await node.cached(ladder)
    assert cached is not None and cached[0] == "Ladder v2"


# --- the same rules when a burst is handled as one batch -----------------------------------


def queued_activity(
    fake: FakeHost, entry_id: int, slug: str, activity_type: str, document: dict[str, Any]
) -> QueuedActivity:
    actor = fake.actor(slug)
    activity = build_activity(
        activity_type, f"{actor}/activities/{new_id()}", actor, document, to=[PUBLIC]
    )
    raw = orjson.dumps(activity).decode()
    return QueuedActivity(entry_id, raw, None, 1, actor, str(activity["id"]))


@dataclass
class ListQueue:
    """Hands out fixed entries once and keeps what was recorded."""

    entries: list[QueuedActivity]
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[QueuedActivity]:
        claimed, self.entries = self.entries[:limit], self.entries[limit:]
        return claimed

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes.update((outcome.entry_id, outcome) for outcome in outcomes)


async def test_a_burst_handled_as_one_batch_keeps_every_rule_in_arrival_order(
    node: LiveNode, fake: FakeHost
) -> None:
    """Ownership, older-never-wins and who we follow decide each entry of a batch
    as they decide one activity at a time; a stranger's is retried, not lost."""
    victim, mallory = fake.actor("victim"), fake.actor("mallory")
    ladder, drill = f"{victim}/listings/{new_id()}", f"{mallory}/listings/{new_id()}"
    now = datetime.now(UTC)
    burst = [
        ("victim", "Create", note(ladder, victim, "Ladder v1", updated=now - timedelta(hours=1))),
        ("mallory", "Update", note(ladder, mallory, "Hijacked", updated=FAR_FUTURE)),
        ("mallory", "Create", note(f"{victim}/listings/{new_id()}", mallory, "Squatted")),
        ("mallory", "Create", note(drill, mallory, "Mallory's own drill")),
        ("victim", "Update", note(ladder, victim, "Ladder v2", updated=now)),
        ("victim", "Update", note(ladder, victim, "Ladder v0", updated=now - timedelta(days=1))),
        ("stranger", "Create", note(f"{fake.actor('stranger')}/listings/1", None, "Who?")),
    ]
    entries = [queued_activity(fake, n, *sent) for n, sent in enumerate(burst, 1)]
    queue = ListQueue(entries)
    handlers = inbox_handlers(node.app)
    batches: list[int] = []
    batch = ListingBatch(node.app)
    real_handle = batch.handle

    async def counting(run: Sequence[InboundActivity]) -> list[BaseException | None]:
        batches.append(len(run))
        return await real_handle(run)

    batch.handle = counting  # type: ignore[method-assign]
    processor = InboxProcessor(queue, handlers, batch_handler=batch, retry_delays=[timedelta(1)])
    assert await processor.run_once() == len(burst)

    assert batches == [len(burst)], "the burst went to the batch handler at once"
    states = [queue.outcomes[n].state for n in range(1, len(burst) + 1)]
    assert states == ["handled", "ignored", "ignored", "handled", "handled", "handled", "retry"]
    cached = await node.cached(ladder)
    assert cached is not None and cached[:2] == ("Ladder v2", victim), "the newest version wins"
    assert (await node.cached(drill) or ("",))[0] == "Mallory's own drill"
