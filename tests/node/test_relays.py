"""Relay subscriptions, handler by handler, on SQLite and PostgreSQL.

The relay is a cached actor row; the server that hosts announced objects is
a small aiohttp app on 127.0.0.1, so a fetch is a real one through the
address guard (the node allows loopback, as in tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select

from federation.builders import build_actor_document
from federation.contexts import default_context
from federation.inbox_processor import IgnoreActivity
from federation.vocab import PUBLIC, Activity
from node.appkeys import SESSIONS
from node.protocol.answers import on_answer
from node.protocol.context import FederationContext
from node.protocol.jobs import JobRun
from node.protocol.relays import RELAY_FETCH, on_announce, run_relay_fetch
from storage.models import Community, Delivery, Job, Relay, RemoteListing, utcnow
from storage.repositories import CommunityRepository
from tests.conftest import NodeHandle
from tests.support.fake_remote import fake_keys

RELAY = "http://relay.test/actor"
RELAY_INBOX = "http://relay.test/inbox"
STRANGER = "http://elsewhere.test/actor"
ACTIVITY_JSON = "application/activity+json"


def activity(kind: str, actor: str, obj: Any, n: int = 1) -> Activity:
    return Activity(
        id=f"{actor}/activities/{kind.lower()}-{n}",
        type=kind,
        actor=actor,
        object=obj,
        to=(),
        cc=(),
        published=None,
        partnership=False,
        raw={},
    )


def ctx(node: NodeHandle, **config: Any) -> FederationContext:
    base = FederationContext.from_app(node.client.app)
    if not config:
        return base
    return replace(base, config=base.config.model_copy(update=config))


async def _local(node: NodeHandle) -> Community:
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        return local


async def _relay(node: NodeHandle, state: str = "active", actor: str = RELAY) -> Relay:
    local = await _local(node)
    async with node.client.app[SESSIONS]() as db:
        db.add(
            Community(
                ap_id=actor,
                actor_type="Application",
                slug="relay",
                host=actor.split("/")[2],
                name="Relay",
                base_url=actor.rsplit("/", 1)[0],
                inbox_url=RELAY_INBOX,
                fetched_at=utcnow(),
            )
        )
        relay = Relay(
            local_community_id=local.id,
            actor_id=actor,
            inbox_url=RELAY_INBOX,
            name="Relay",
            follow_activity_id=f"{node.config.base_url}/c/tools/activities/relay-follow",
            state=state,
            fetch_window_count=0,
        )
        db.add(relay)
        await db.commit()
        return relay


async def _rows(node: NodeHandle, model: Any) -> list[Any]:
    async with node.client.app[SESSIONS]() as db:
        return list(await db.scalars(select(model)))


# --- the subscription's answers --------------------------------------------------------


async def test_the_relay_accepting_our_follow_activates_the_subscription(
    node: NodeHandle,
) -> None:
    relay = await _relay(node, state="pending")
    await on_answer(ctx(node), activity("Accept", RELAY, {"id": relay.follow_activity_id}))
    [stored] = await _rows(node, Relay)
    assert stored.state == "active"


async def test_only_the_relay_itself_can_accept_or_reject_our_follow(node: NodeHandle) -> None:
    relay = await _relay(node, state="pending")
    async with node.client.app[SESSIONS]() as db:
        db.add(
            Community(
                ap_id=STRANGER,
                slug="other",
                host="elsewhere.test",
                name="Other",
                base_url="http://elsewhere.test",
                inbox_url=f"{STRANGER}/inbox",
                fetched_at=utcnow(),
            )
        )
        await db.commit()
    for verb in ("Accept", "Reject"):
        with pytest.raises(IgnoreActivity):
            await on_answer(ctx(node), activity(verb, STRANGER, relay.follow_activity_id))
    [stored] = await _rows(node, Relay)
    assert stored.state == "pending"
    await on_answer(ctx(node), activity("Reject", RELAY, relay.follow_activity_id))
    [stored] = await _rows(node, Relay)
    assert stored.state == "rejected"


# --- what we send relays ---------------------------------------------------------------


async def _post(node: NodeHandle, headers: dict[str, str], title: str, visibility: str) -> None:
    body = {"kind": "offer", "title": title, "visibility": visibility}
    resp = await node.client.post("/api/v1/listings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()


async def test_only_public_listings_are_delivered_to_an_active_relay(node: NodeHandle) -> None:
    await _relay(node)
    headers = await node.login("stew", "steward")
    await _post(node, headers, "Public ladder", "public")
    await _post(node, headers, "Partners-only trailer", "partners")
    await _post(node, headers, "Community-only drill", "community")
    to_relay = [d.body for d in await _rows(node, Delivery) if d.target_inbox == RELAY_INBOX]
    assert len(to_relay) == 1
    assert "Public ladder" in to_relay[0] and orjson.loads(to_relay[0])["type"] == "Create"
    for body in to_relay:
        assert "Partners-only trailer" not in body and "Community-only drill" not in body


async def test_a_pending_relay_receives_nothing_yet(node: NodeHandle) -> None:
    await _relay(node, state="pending")
    headers = await node.login("stew", "steward")
    await _post(node, headers, "Public ladder", "public")
    assert [d for d in await _rows(node, Delivery) if d.target_inbox == RELAY_INBOX] == []


# --- what relays announce ------------------------------------------------------------


async def test_an_announce_from_a_relay_we_do_not_subscribe_to_changes_nothing(
    node: NodeHandle,
) -> None:
    await _relay(node, state="pending")
    for actor in (RELAY, STRANGER):
        with pytest.raises(IgnoreActivity):
            await on_announce(ctx(node), activity("Announce", actor, "http://x.test/c/x/l/1"))
    assert await _rows(node, Job) == []


async def test_an_announce_queues_one_fetch_per_object_id(node: NodeHandle) -> None:
    relay = await _relay(node)
    note = "http://origin.test/c/oak/listings/1"
    await on_announce(ctx(node), activity("Announce", RELAY, note, 1))
    with pytest.raises(IgnoreActivity, match="already being fetched"):
        await on_announce(ctx(node), activity("Announce", RELAY, {"id": note}, 2))
    [job] = await _rows(node, Job)
    assert job.kind == RELAY_FETCH and job.subject == note
    assert orjson.loads(job.payload) == {"object_id": note, "relay_id": relay.id}


async def test_a_relay_cannot_make_us_fetch_more_than_its_budget(node: NodeHandle) -> None:
    await _relay(node)
    limited = ctx(node, relay_fetches_per_minute=2)
    for n in (1, 2):
        await on_announce(limited, activity("Announce", RELAY, f"http://o.test/c/o/l/{n}", n))
    with pytest.raises(IgnoreActivity, match="more fetches"):
        await on_announce(limited, activity("Announce", RELAY, "http://o.test/c/o/l/3", 3))
    assert len(await _rows(node, Job)) == 2


@pytest.mark.parametrize(
    "obj",
    [
        "not a url",
        "file:///etc/passwd",
        "http://tools.test/c/tools/listings/1",
        {
            "id": "http://o.test/c/o/l/1",
            "type": "Note",
            "kind": "offer",
            "to": ["http://o.test/c/o"],
        },
        {
            "id": "http://o.test/c/o/l/1",
            "type": "Note",
            "kind": "offer",
            "attributedTo": "http://p.test/c/p",
        },
    ],
    ids=["not-a-url", "not-http", "ours", "not-public", "another-host"],
)
async def test_bad_announces_change_nothing(node: NodeHandle, obj: Any) -> None:
    await _relay(node)
    with pytest.raises(IgnoreActivity):
        await on_announce(ctx(node), activity("Announce", RELAY, obj))
    assert await _rows(node, Job) == []
    [relay] = await _rows(node, Relay)
    assert relay.fetch_window_count == 0


# --- fetching what was announced ------------------------------------------------------


@dataclass
class Origin:
    """A community's server: its actor and the notes it serves, as they are asked for."""

    base: str = ""
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def actor(self) -> str:
        return f"{self.base}/c/oak"

    def note(self, n: int, *, audience: str = "public", **extra: Any) -> str:
        note_id = f"{self.actor}/listings/{n}"
        to = [PUBLIC] if audience == "public" else [self.actor]
        self.documents[f"/c/oak/listings/{n}"] = {
            "@context": default_context(),
            "id": note_id,
            "type": "Note",
            "attributedTo": self.actor,
            "name": f"Relayed offer {n}",
            "content": "<p>Come and get it</p>",
            "to": to,
            "published": "2026-01-01T00:00:00Z",
            "kind": "offer",
            "category": "tools",
            "status": "active",
            "visibility": audience,
            **extra,
        }
        return note_id

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.path == "/c/oak":
            document = build_actor_document(
                actor_id=self.actor,
                preferred_username="oak",
                name="Oak Commons",
                description="",
                inbox=f"{self.actor}/inbox",
                outbox=f"{self.actor}/outbox",
                followers=f"{self.actor}/followers",
                shared_inbox=f"{self.base}/inbox",
                public_key_pem=fake_keys()[1],
                url=self.actor,
            )
        elif request.path in self.documents:
            document = self.documents[request.path]
        else:
            raise web.HTTPNotFound()
        return web.Response(body=orjson.dumps(document), content_type=ACTIVITY_JSON)


@pytest.fixture
async def origin(aiohttp_server: Any) -> Origin:
    served = Origin()
    app = web.Application()
    app.router.add_get("/{tail:.*}", served.handle)
    server = await aiohttp_server(app)
    served.base = str(server.make_url("")).rstrip("/")
    return served


async def _fetch(node: NodeHandle, relay: Relay, object_id: str) -> dict[str, Any]:
    run = JobRun("j1", RELAY_FETCH, {"object_id": object_id, "relay_id": relay.id}, 0)
    await run_relay_fetch(ctx(node))(run)
    return run.progress


async def test_an_announced_public_listing_is_fetched_from_its_origin_and_mirrored(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node)
    note_id = origin.note(1)
    progress = await _fetch(node, relay, note_id)
    assert progress == {"mirrored": note_id, "origin": origin.actor}
    [cached] = await _rows(node, RemoteListing)
    assert (cached.ap_id, cached.title, cached.audience) == (note_id, "Relayed offer 1", "public")
    assert origin.requests == ["/c/oak/listings/1", "/c/oak"]


@pytest.mark.parametrize(
    "shape",
    ["partners-only", "other-host-actor", "other-id", "gone", "not-a-listing"],
)
async def test_what_the_origin_does_not_vouch_for_is_not_mirrored(
    node: NodeHandle, origin: Origin, shape: str
) -> None:
    relay = await _relay(node)
    if shape == "partners-only":
        note_id = origin.note(1, audience="partners")
    elif shape == "other-host-actor":
        note_id = origin.note(1, attributedTo="http://elsewhere.test/c/other")
    elif shape == "other-id":
        origin.note(2)
        note_id = f"{origin.actor}/listings/1"
        origin.documents["/c/oak/listings/1"] = origin.documents["/c/oak/listings/2"]
    elif shape == "gone":
        note_id = f"{origin.actor}/listings/404"
    else:
        note_id = origin.note(1, kind="banana")
    progress = await _fetch(node, relay, note_id)
    assert "ignored" in progress, progress
    assert await _rows(node, RemoteListing) == []


async def test_a_relay_fills_the_mirror_with_one_community_only_up_to_the_limit(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node)
    limited = ctx(node, relay_max_listings_per_origin=2)
    for n in (1, 2, 3):
        run = JobRun("j", RELAY_FETCH, {"object_id": origin.note(n), "relay_id": relay.id}, 0)
        await run_relay_fetch(limited)(run)
    assert len(await _rows(node, RemoteListing)) == 2
    assert "ignored" in run.progress


async def test_a_fetch_for_a_subscription_that_ended_fetches_nothing(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node, state="rejected")
    progress = await _fetch(node, relay, origin.note(1))
    assert "ignored" in progress and origin.requests == []


async def test_an_announced_activity_id_is_read_for_the_note_its_server_embeds(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node)
    note_id = origin.note(1)
    note = origin.documents["/c/oak/listings/1"]
    wrapped = {k: v for k, v in note.items() if k != "@context"}
    origin.documents["/c/oak/activities/1"] = {
        "@context": default_context(),
        "id": f"{origin.actor}/activities/1",
        "type": "Create",
        "actor": origin.actor,
        "object": wrapped,
    }
    origin.documents["/c/oak/activities/2"] = {
        **origin.documents["/c/oak/activities/1"],
        "id": f"{origin.actor}/activities/2",
        "object": {**wrapped, "id": "http://elsewhere.test/c/oak/listings/1"},
    }
    progress = await _fetch(node, relay, f"{origin.actor}/activities/2")
    assert "another host" in progress["ignored"]
    progress = await _fetch(node, relay, f"{origin.actor}/activities/1")
    assert progress == {"mirrored": f"{origin.actor}/activities/1", "origin": origin.actor}
    [cached] = await _rows(node, RemoteListing)
    assert cached.ap_id == note_id


async def test_a_listing_its_server_no_longer_has_is_dropped_when_a_relay_says_so(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node)
    note_id = origin.note(1)
    await _fetch(node, relay, note_id)
    tombstone = {"id": note_id, "type": "Tombstone"}
    stranger = {"id": f"{origin.actor}/listings/9", "type": "Tombstone"}
    with pytest.raises(IgnoreActivity, match="no public listing we hold"):
        await on_announce(ctx(node), activity("Announce", RELAY, stranger, 1))
    await on_announce(ctx(node), activity("Announce", RELAY, tombstone, 2))
    [job] = await _rows(node, Job)
    assert job.subject == note_id

    assert (await _fetch(node, relay, note_id)) == {"mirrored": note_id, "origin": origin.actor}
    assert len(await _rows(node, RemoteListing)) == 1  # still served: kept
    del origin.documents["/c/oak/listings/1"]
    assert (await _fetch(node, relay, note_id)) == {"removed": note_id}
    assert await _rows(node, RemoteListing) == []


async def test_a_host_that_served_a_post_is_not_asked_again_for_a_while(
    node: NodeHandle, origin: Origin
) -> None:
    relay = await _relay(node)
    status = origin.note(1)
    del origin.documents["/c/oak/listings/1"]["kind"]
    progress = await _fetch(node, relay, status)
    assert "not a listing" in progress["ignored"]
    with pytest.raises(IgnoreActivity, match="serves posts"):
        await on_announce(ctx(node), activity("Announce", RELAY, origin.note(2)))
    assert await _rows(node, Job) == [] and await _rows(node, RemoteListing) == []
