"""The inbox in a real node (SQLite and PostgreSQL) against a fake remote on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select

from federation.inbox_processor import Handler, InboundActivity, InboxProcessor
from federation.keys import generate_key_pair
from federation.signatures import sign_request, signature_key_id
from node.app import init_app
from node.appkeys import ENGINE, SESSIONS
from node.config import write_config
from node.protocol.inbox import (
    INBOX_HANDLERS,
    INBOX_RECEIVER,
    GroupCommit,
    InboxBacklog,
    SqlInboxQueue,
    inbox_processor_ctx,
)
from node.protocol.key_resolver import SqlKeyResolver
from storage.models import Community, InboxEntry
from storage.repositories import BlockRepository, CommunityRepository
from storage.repositories.inbox import NewInboxEntry
from tests.conftest import create_node_community

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
ACTIVITY_JSON = "application/activity+json"
SIGNED_FOR_US = {"Content-Type": ACTIVITY_JSON, "Host": "tools.test"}
"""The node's configured host is tools.test; the test client reaches it on 127.0.0.1."""
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="module")
def key_pairs() -> list[tuple[str, str]]:
    return [generate_key_pair(), generate_key_pair()]


# --- the fake remote ---------------------------------------------------------------------


@dataclass
class Remote:
    """A Mastodon-like server whose actor `alice` we can rotate keys for."""

    server: TestServer
    public_pem: str
    private_pem: str
    fetches: list[str] = field(default_factory=list)
    fetch_key_ids: list[str | None] = field(default_factory=list)
    failing: bool = False
    key_document: bool = False

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def alice(self) -> str:
        return f"{self.base}/users/alice"

    @property
    def key_id(self) -> str:
        return f"{self.base}/keys/alice" if self.key_document else f"{self.alice}#main-key"

    def actor_document(self) -> dict[str, Any]:
        text = (FIXTURES / "actor.json").read_text().replace("https://mastodon.example", self.base)
        document: dict[str, Any] = orjson.loads(text)
        document["publicKey"] = {
            "id": self.key_id,
            "owner": self.alice,
            "publicKeyPem": self.public_pem,
        }
        return document

    def follow(self, n: int = 1, target: str = "http://tools.test/c/tools") -> dict[str, Any]:
        text = (FIXTURES / "follow.json").read_text().replace("https://mastodon.example", self.base)
        document: dict[str, Any] = orjson.loads(text)
        document["id"] = f"{self.base}/follows/{n}"
        document["object"] = target
        return document


@pytest.fixture
async def remote(aiohttp_server: ServerFactory, key_pairs: list[tuple[str, str]]) -> Remote:
    state: list[Remote] = []

    async def actor(request: web.Request) -> web.Response:
        me = state[0]
        me.fetches.append(request.path)
        me.fetch_key_ids.append(signature_key_id(request.headers))
        if me.failing:
            return web.Response(status=500, text="down for maintenance")
        return web.json_response(me.actor_document(), content_type=ACTIVITY_JSON)

    async def key(request: web.Request) -> web.Response:
        me = state[0]
        me.fetches.append(request.path)
        document = {
            "@context": "https://w3id.org/security/v1",
            "id": me.key_id,
            "type": "Key",
            "owner": me.alice,
            "publicKeyPem": me.public_pem,
        }
        return web.json_response(document, content_type=ACTIVITY_JSON)

    app = web.Application()
    app.router.add_get("/users/alice", actor)
    app.router.add_get("/keys/alice", key)
    server = await aiohttp_server(app)
    private, public = key_pairs[0]
    state.append(Remote(server, public, private))
    return state[0]


# --- the node ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: list[InboundActivity] = []
        self.event = asyncio.Event()

    async def __call__(self, inbound: InboundActivity) -> None:
        self.seen.append(inbound)
        self.event.set()


@dataclass
class InboxNode:
    app: web.Application
    client: TestClient[Any, Any]
    recorder: Recorder

    async def post(
        self, remote: Remote, document: dict[str, Any], path: str = "/inbox"
    ) -> tuple[int, dict[str, Any]]:
        body = orjson.dumps(document)
        url = str(self.client.make_url(path))
        headers = sign_request("POST", url, SIGNED_FOR_US, body, remote.key_id, remote.private_pem)
        response = await self.client.post(path, data=body, headers=headers)
        text = await response.read()
        return response.status, orjson.loads(text) if text else {}

    async def entries(self) -> list[InboxEntry]:
        async with self.app[SESSIONS]() as session:
            return list((await session.scalars(select(InboxEntry).order_by(InboxEntry.id))).all())

    async def actor_row(self, ap_id: str) -> Community | None:
        async with self.app[SESSIONS]() as session:
            return await CommunityRepository(session).get_by_ap_id(ap_id)

    async def process(self) -> int:
        handlers: dict[str, Handler] = self.app[INBOX_HANDLERS]
        return await InboxProcessor(SqlInboxQueue(self.app[SESSIONS]), handlers).run_once(50)


NodeFactory = Callable[..., Awaitable[InboxNode]]


@pytest.fixture
def make_node(tmp_path: Path, database_url: str, aiohttp_client: ClientFactory) -> NodeFactory:
    """A node as `init_app` builds it, with a recording `Follow` handler.

    Without `run_processor` the background processor is left out, so that a
    test steps it (`InboxNode.process`) instead of waiting on it.
    """

    async def make(
        *, run_processor: bool = False, resolver_options: dict[str, Any] | None = None
    ) -> InboxNode:
        data = tmp_path / "node"
        data.mkdir()
        config = write_config(
            data,
            base_url="http://tools.test",
            slug="tools",
            name="Tool Library",
            database_url=database_url,
            allow_private_addresses=True,
        )
        await create_node_community(config)
        app = init_app(config)
        recorder = Recorder()
        app[INBOX_HANDLERS]["Follow"] = recorder
        if resolver_options:
            app[INBOX_RECEIVER].resolve_key = SqlKeyResolver(app, **resolver_options)
        if not run_processor:
            app.cleanup_ctx.remove(inbox_processor_ctx)
        return InboxNode(app, await aiohttp_client(app), recorder)

    return make


# --- tests ------------------------------------------------------------------------------------


async def test_signed_follow_is_verified_with_a_fetched_key_stored_and_handled(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node(run_processor=True)
    status, payload = await node.post(remote, remote.follow())
    assert status == 202, payload
    assert remote.fetches == ["/users/alice"]
    assert remote.fetch_key_ids == ["http://tools.test/c/tools#main-key"], "signed fetch"
    await asyncio.wait_for(node.recorder.event.wait(), 10)
    [inbound] = node.recorder.seen
    assert (inbound.activity.type, inbound.activity.actor) == ("Follow", remote.alice)
    assert inbound.recipient is None
    [entry] = await node.entries()
    assert entry.activity_id == remote.follow()["id"]
    cached = await node.actor_row(remote.alice)
    assert cached is not None
    assert (cached.is_local, cached.actor_type, cached.slug) == (False, "Person", "alice")
    assert cached.public_key_pem == remote.public_pem
    assert cached.shared_inbox_url == f"{remote.base}/inbox"
    assert "<p>" not in cached.description and "Bike mechanic" in cached.description


async def test_processing_records_the_outcome_in_the_inbox_log(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    assert (await node.post(remote, remote.follow(1)))[0] == 202
    listen = {**remote.follow(2), "type": "Listen"}
    assert (await node.post(remote, listen))[0] == 202
    assert await node.process() == 2
    assert await node.process() == 0
    states = [(e.activity_type, e.state, e.attempts) for e in await node.entries()]
    assert states == [("Follow", "handled", 1), ("Listen", "ignored", 1)]


async def test_duplicate_and_concurrent_deliveries_are_stored_once(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    results = await asyncio.gather(*(node.post(remote, remote.follow()) for _ in range(4)))
    assert [status for status, _ in results] == [202] * 4
    assert len(await node.entries()) == 1
    assert remote.fetches == ["/users/alice"], "concurrent requests share one key fetch"
    assert await node.process() == 1
    assert len(node.recorder.seen) == 1


async def test_known_key_is_not_fetched_again(make_node: NodeFactory, remote: Remote) -> None:
    node = await make_node()
    assert (await node.post(remote, remote.follow(1)))[0] == 202
    assert (await node.post(remote, remote.follow(2)))[0] == 202
    assert remote.fetches == ["/users/alice"]
    fresh = SqlKeyResolver(node.app)  # a new process: nothing in memory, the row in the DB
    record = await fresh(remote.key_id)
    assert record is not None and record.owner == remote.alice
    assert remote.fetches == ["/users/alice"]


async def test_rotated_key_is_refetched_once_and_accepted(
    make_node: NodeFactory, remote: Remote, key_pairs: list[tuple[str, str]]
) -> None:
    node = await make_node()
    assert (await node.post(remote, remote.follow(1)))[0] == 202
    remote.private_pem, remote.public_pem = key_pairs[1]
    status, payload = await node.post(remote, remote.follow(2))
    assert status == 202, payload
    assert remote.fetches == ["/users/alice", "/users/alice"]
    cached = await node.actor_row(remote.alice)
    assert cached is not None and cached.public_key_pem == key_pairs[1][1]


async def test_forged_signatures_cannot_make_us_refetch_repeatedly(
    make_node: NodeFactory, remote: Remote, key_pairs: list[tuple[str, str]]
) -> None:
    node = await make_node()
    assert (await node.post(remote, remote.follow(1)))[0] == 202
    remote.private_pem = key_pairs[1][0]  # signing with a key alice never published
    for n in (2, 3, 4):
        status, payload = await node.post(remote, remote.follow(n))
        assert status == 401 and payload["error"]["code"] == "bad_signature"
    assert remote.fetches == ["/users/alice", "/users/alice"], "one refresh, then rate-limited"


async def test_failed_key_fetch_is_remembered_briefly_not_forever(
    make_node: NodeFactory, remote: Remote
) -> None:
    now = [1000.0]
    node = await make_node(resolver_options={"failure_ttl": 30.0, "clock": lambda: now[0]})
    remote.failing = True
    status, payload = await node.post(remote, remote.follow(1))
    assert status == 401
    assert payload["error"]["message"] == "signature could not be verified"
    assert (await node.post(remote, remote.follow(1)))[0] == 401
    assert len(remote.fetches) == 1, "a burst from a broken server costs one fetch"
    remote.failing = False
    now[0] += 31
    assert (await node.post(remote, remote.follow(1)))[0] == 202
    assert len(remote.fetches) == 2


async def test_key_document_is_followed_to_its_owner(
    make_node: NodeFactory, remote: Remote
) -> None:
    remote.key_document = True
    node = await make_node()
    status, payload = await node.post(remote, remote.follow())
    assert status == 202, payload
    assert remote.fetches == ["/keys/alice", "/users/alice"]


async def test_actor_that_does_not_publish_the_signing_key_is_refused(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    body = orjson.dumps(remote.follow())
    url = str(node.client.make_url("/inbox"))
    key_id = f"{remote.alice}#other-key"
    headers = sign_request("POST", url, SIGNED_FOR_US, body, key_id, remote.private_pem)
    response = await node.client.post("/inbox", data=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "bad_signature"
    assert await node.entries() == []


async def test_community_inbox_records_the_recipient(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    status, payload = await node.post(remote, remote.follow(), "/c/tools/inbox")
    assert status == 202, payload
    [entry] = await node.entries()
    assert entry.recipient == "http://tools.test/c/tools"
    await node.process()
    assert node.recorder.seen[0].recipient == "http://tools.test/c/tools"


async def test_unknown_community_inbox_is_404(make_node: NodeFactory, remote: Remote) -> None:
    node = await make_node()
    status, payload = await node.post(remote, remote.follow(), "/c/nobody/inbox")
    assert status == 404 and payload["error"]["code"] == "not_found"
    assert remote.fetches == []
    assert await node.entries() == []


@pytest.mark.parametrize("blocked", ["127.0.0.1", "port"])
async def test_blocked_domain_is_refused_and_nothing_is_stored(
    make_node: NodeFactory, remote: Remote, blocked: str
) -> None:
    node = await make_node()
    domain = remote.base.split("//")[1] if blocked == "port" else blocked
    async with node.app[SESSIONS]() as session:
        await BlockRepository(session).add(domain)
        await session.commit()
    status, payload = await node.post(remote, remote.follow())
    assert status == 403 and payload["error"]["code"] == "domain_blocked"
    assert remote.fetches == [], "nothing is fetched from a blocked domain"
    assert await node.entries() == []


async def test_local_community_signature_is_checked_without_a_fetch(
    make_node: NodeFactory, remote: Remote
) -> None:
    """Communities on one node still talk through the federation path."""
    node = await make_node()
    async with node.app[SESSIONS]() as session:
        tools = await CommunityRepository(session).get_local_by_slug("tools")
    assert tools is not None and tools.key_id and tools.private_key_pem
    document = copy.deepcopy(remote.follow())
    document.update(id="http://tools.test/follows/1", actor=tools.ap_id, object=remote.alice)
    body = orjson.dumps(document)
    headers = sign_request(
        "POST",
        str(node.client.make_url("/inbox")),
        SIGNED_FOR_US,
        body,
        tools.key_id,
        tools.private_key_pem,
    )
    response = await node.client.post("/inbox", data=body, headers=headers)
    assert response.status == 202, await response.text()
    assert remote.fetches == []


async def test_processor_task_stops_with_the_app(make_node: NodeFactory) -> None:
    node = await make_node(run_processor=True)
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "inbox-processor"]
    assert len(tasks) == 1
    await node.client.close()
    assert tasks[0].done()


async def test_block_added_while_running_applies_to_the_next_delivery(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    assert (await node.post(remote, remote.follow(1)))[0] == 202  # block list now cached
    async with node.app[SESSIONS]() as session:
        await BlockRepository(session).add("127.0.0.1")
        await session.commit()
    status, payload = await node.post(remote, remote.follow(2))
    assert status == 403 and payload["error"]["code"] == "domain_blocked"
    async with node.app[SESSIONS]() as session:
        await BlockRepository(session).remove("127.0.0.1")
        await session.commit()
    assert (await node.post(remote, remote.follow(3)))[0] == 202


# --- group commit -------------------------------------------------------------------------


def entry(n: int, activity_id: str | None = None) -> NewInboxEntry:
    return NewInboxEntry(
        activity_id or f"https://r.example/a/{n}", "Follow", "https://r.example/u", "{}"
    )


async def test_concurrent_stores_share_commits_in_arrival_order(make_node: NodeFactory) -> None:
    node = await make_node()
    writes = GroupCommit(node.app[SESSIONS], max_rows=3)
    entries = [entry(1), entry(2), entry(1), entry(3), entry(4), entry(5), entry(2)]
    results = await asyncio.gather(*(writes.add(e) for e in entries))
    assert results == [True, True, False, True, True, True, False]
    stored = [e.activity_id.rsplit("/", 1)[1] for e in await node.entries()]
    assert stored == ["1", "2", "3", "4", "5"]
    assert await writes.add(entry(5)) is False


async def test_a_failed_commit_is_reported_to_every_waiter() -> None:
    class Broken:
        def __call__(self) -> Broken:
            return self

        async def __aenter__(self) -> None:
            raise ConnectionError("database restarting")

        async def __aexit__(self, *exc: object) -> None:
            return None

    writes = GroupCommit(Broken())  # type: ignore[arg-type]
    results = await asyncio.gather(
        writes.add(entry(1)), writes.add(entry(2)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_repeated_activity_is_answered_without_touching_the_inbox_log(
    make_node: NodeFactory, remote: Remote
) -> None:
    node = await make_node()
    inserts: list[str] = []

    def count_inbox_inserts(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "inbox_log" in statement:
            inserts.append(statement)

    engine = node.app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", count_inbox_inserts)
    try:
        for _ in range(3):
            assert (await node.post(remote, remote.follow()))[0] == 202
        assert (await node.post(remote, remote.follow(2)))[0] == 202
    finally:
        event.remove(engine, "before_cursor_execute", count_inbox_inserts)
    assert len(inserts) == 2, "one write for each new activity, none for the repeats"
    assert len(await node.entries()) == 2


# --- the backlog brake ------------------------------------------------------------------------


async def test_past_the_backlog_limit_stores_wait_for_the_processor_to_make_room(
    make_node: NodeFactory,
) -> None:
    node = await make_node()
    backlog = InboxBacklog(3, max_wait=5.0)
    backlog.active = True
    writes = GroupCommit(node.app[SESSIONS], backlog=backlog)
    assert await asyncio.gather(*(writes.add(entry(n)) for n in range(3))) == [True] * 3
    assert backlog.waiting == 3

    held = asyncio.create_task(writes.add(entry(4)))
    await asyncio.sleep(0.2)
    assert not held.done(), "a fourth waits while three are unhandled"
    assert len(await node.entries()) == 3, "and is not stored meanwhile"
    backlog.handled(2)
    assert await asyncio.wait_for(held, 5) is True
    assert len(await node.entries()) == 4


async def test_the_backlog_brake_never_holds_a_store_past_its_wait(
    make_node: NodeFactory,
) -> None:
    node = await make_node()
    backlog = InboxBacklog(1, max_wait=0.1)
    backlog.active = True
    writes = GroupCommit(node.app[SESSIONS], backlog=backlog)
    assert await writes.add(entry(1)) is True
    assert await asyncio.wait_for(writes.add(entry(2)), 5) is True, "stored after the wait"

    backlog.active = False  # the processor runs elsewhere: no brake at all
    backlog.max_wait = 60.0
    assert await asyncio.wait_for(writes.add(entry(3)), 5) is True
