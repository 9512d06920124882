"""What a node does with exchange messages it must not act on (both databases).

Fake servers on 127.0.0.1 play the other nodes and sign what they send, so
every message goes through the real inbox: a party replaying what it sent,
a third node speaking about an exchange it is no party to, the requester's
side answering its own request, and a blocked server asking for a listing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from federation.exchanges import Agreement, ThreadMessage, build_agreement, build_thread_message
from node.appkeys import SESSIONS
from storage.models import (
    Community,
    Exchange,
    ExchangeMessage,
    InboxEntry,
    Notification,
    RemoteListing,
    utcnow,
)
from storage.repositories import BlockRepository
from tests.conftest import NodeHandle
from tests.support.api import eventually
from tests.support.fake_remote import FakeRemote, fake_remote

HOST = "tools.test"
TOOLS = f"http://{HOST}/c/tools"


@dataclass
class World:
    node: NodeHandle
    http: aiohttp.ClientSession
    garden: FakeRemote
    """The other party's node: its community `garden`, member `gina`."""
    intruder: FakeRemote
    """A third node, party to nothing."""

    @property
    def garden_id(self) -> str:
        return self.garden.actor_id("garden")

    async def send(self, remote: FakeRemote, activity: dict[str, Any]) -> str:
        """POST `activity` signed to our community's inbox; the state it was left in."""
        url = str(self.node.client.make_url("/c/tools/inbox"))
        status, _, text = await remote.post(self.http, url, activity, host=HOST)
        assert status == 202, text

        async def handled() -> str:
            async with self.node.client.app[SESSIONS]() as db:
                entry = await db.scalar(
                    select(InboxEntry).where(InboxEntry.activity_id == activity["id"])
                )
            assert entry is not None and entry.state != "received", entry
            return entry.state

        return await eventually(handled)

    async def rows(self, model: Any) -> list[Any]:
        async with self.node.client.app[SESSIONS]() as db:
            return list((await db.scalars(select(model))).unique().all())

    async def count(self, model: Any) -> int:
        async with self.node.client.app[SESSIONS]() as db:
            return int(await db.scalar(select(func.count()).select_from(model)) or 0)

    async def exchange(self) -> Exchange:
        [exchange] = await self.rows(Exchange)
        return exchange


@pytest.fixture
async def world(node: NodeHandle) -> AsyncIterator[World]:
    async with fake_remote() as garden, fake_remote() as intruder, aiohttp.ClientSession() as http:
        garden.add_actor("garden")
        intruder.add_actor("other")
        yield World(node, http, garden, intruder)


def activity(remote: FakeRemote, kind: str, slug: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return remote.activity(kind, slug, obj, to=[TOOLS], **extra)


async def our_offer(world: World, **fields: Any) -> dict[str, Any]:
    ada = await world.node.login("ada")
    body = {"kind": "offer", "title": "Cordless drill", "visibility": "public", **fields}
    resp = await world.node.client.post("/api/v1/listings", json=body, headers=ada)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def garden_agreement(world: World, listing_ap_id: str, **fields: Any) -> Agreement:
    """Gina of garden asks for one of our offers."""
    values: dict[str, Any] = {
        "id": f"{world.garden_id}/exchanges/{uuid.uuid4().hex}",
        "listing": listing_ap_id,
        "provider": TOOLS,
        "receiver": world.garden_id,
        "provider_member": None,
        "receiver_member": f"gina@{world.garden.host}",
        "provider_name": None,
        "receiver_name": "Gina",
        "title": "Cordless drill",
        "note": "Saturday?",
        "quantity": None,
        "hours": 2.0,
        "status": None,
    }
    return Agreement(**{**values, **fields})


async def garden_offer(world: World) -> tuple[dict[str, Any], Agreement]:
    """Gina's Offer for ada's public drill, handled."""
    drill = await our_offer(world)
    agreement = garden_agreement(world, drill["ap_id"])
    offer = activity(world.garden, "Offer", "garden", build_agreement(agreement))
    assert await world.send(world.garden, offer) == "handled"
    return offer, agreement


async def garden_listing(world: World) -> str:
    """A public offer of garden's, mirrored here; its id."""
    async with world.node.client.app[SESSIONS]() as db:
        garden = Community(
            ap_id=world.garden_id,
            is_local=False,
            slug="garden",
            host=world.garden.host,
            name="Garden Commons",
            base_url=world.garden.base,
            inbox_url=f"{world.garden_id}/inbox",
            shared_inbox_url=f"{world.garden.base}/inbox",
            fetched_at=utcnow(),
        )
        db.add(garden)
        await db.flush()
        listing = RemoteListing(
            ap_id=f"{world.garden_id}/listings/{uuid.uuid4().hex}",
            origin_community_id=garden.id,
            audience="public",
            kind="offer",
            title="Long ladder",
            published_at=utcnow(),
        )
        db.add(listing)
        await db.commit()
        return listing.id


async def bob_asks(world: World, listing_id: str) -> tuple[int, Any]:
    bob = await world.node.login("bob")
    resp = await world.node.client.post(
        "/api/v1/exchanges", json={"listing": listing_id}, headers=bob
    )
    return resp.status, await resp.json()


async def our_request(world: World) -> Exchange:
    """Bob asks for a public offer of garden's, so garden's node answers it."""
    status, body = await bob_asks(world, await garden_listing(world))
    assert status == 201, body
    return await world.exchange()


def answer_agreement(world: World, exchange: Exchange, status: str) -> Agreement:
    return Agreement(
        id=exchange.agreement_id,
        listing=exchange.listing_ap_id,
        provider=world.garden_id,
        receiver=TOOLS,
        provider_member=f"gina@{world.garden.host}",
        receiver_member="bob@tools.test",
        provider_name="Gina",
        receiver_name="bob",
        title=exchange.listing_title,
        note=None,
        quantity=None,
        hours=None,
        status=status,
    )


def thread_note(remote: FakeRemote, slug: str, agreement_id: str, text: str) -> dict[str, Any]:
    actor = remote.actor_id(slug)
    return build_thread_message(
        ThreadMessage(
            id=f"{actor}/messages/{uuid.uuid4().hex}",
            agreement=agreement_id,
            attributed_to=actor,
            member=f"mallory@{remote.host}",
            member_name="Mallory",
            content=text,
            published=utcnow(),
        ),
        TOOLS,
    )


async def test_an_offer_heard_twice_makes_one_exchange(world: World) -> None:
    offer, agreement = await garden_offer(world)
    [exchange] = await world.rows(Exchange)
    assert (exchange.status, exchange.receiver_name) == ("requested", "Gina")
    notices = await world.count(Notification)
    assert notices == 1

    # The same activity again is stored once; the same agreement under a new id changes nothing.
    url = str(world.node.client.make_url("/c/tools/inbox"))
    status, _, _ = await world.garden.post(world.http, url, offer, host=HOST)
    assert status in (200, 202)
    again = activity(world.garden, "Offer", "garden", build_agreement(agreement))
    assert await world.send(world.garden, again) == "handled"
    assert [e.id for e in await world.rows(Exchange)] == [exchange.id]
    assert (await world.exchange()).offer_activity_id == offer["id"]
    assert await world.count(Notification) == notices


async def test_an_accept_or_update_heard_twice_changes_the_exchange_once(world: World) -> None:
    exchange = await our_request(world)
    accept = activity(
        world.garden,
        "Accept",
        "garden",
        exchange.offer_activity_id,
        result=build_agreement(answer_agreement(world, exchange, "accepted")),
    )
    assert await world.send(world.garden, accept) == "handled"
    accepted = await world.exchange()
    assert accepted.status == "accepted"
    assert accepted.provider_handle == f"gina@{world.garden.host}"
    notices = await world.count(Notification)
    assert notices == 1

    # A new id for the same answer, then the completion twice.
    accept_again = {**accept, "id": f"{world.garden_id}/activities/{uuid.uuid4().hex}"}
    assert await world.send(world.garden, accept_again) == "handled"
    assert (await world.exchange()).answered_at == accepted.answered_at
    completion = build_agreement(answer_agreement(world, exchange, "completed"))
    for _ in range(2):
        update = activity(world.garden, "Update", "garden", completion)
        assert await world.send(world.garden, update) == "handled"
    completed = await world.exchange()
    assert completed.status == "completed"
    assert await world.count(Notification) == notices + 1

    # Even a late acceptance does not move a completed exchange back.
    late = {**accept, "id": f"{world.garden_id}/activities/{uuid.uuid4().hex}"}
    assert await world.send(world.garden, late) == "handled"
    assert (await world.exchange()).status == "completed"
    assert (await world.exchange()).completed_at == completed.completed_at


async def test_a_third_node_cannot_answer_update_or_write_in_an_exchange(world: World) -> None:
    exchange = await our_request(world)
    world.intruder.add_actor("garden")  # even a community of the same name elsewhere
    for slug in ("other", "garden"):
        accept = activity(
            world.intruder,
            "Accept",
            slug,
            exchange.offer_activity_id,
            result=build_agreement(answer_agreement(world, exchange, "accepted")),
        )
        assert await world.send(world.intruder, accept) == "ignored"
        update = activity(
            world.intruder,
            "Update",
            slug,
            build_agreement(answer_agreement(world, exchange, "cancelled")),
        )
        assert await world.send(world.intruder, update) == "ignored"
        note = thread_note(world.intruder, slug, exchange.agreement_id, "Pay me first")
        assert await world.send(world.intruder, activity(world.intruder, "Create", slug, note)) == (
            "ignored"
        )
    after = await world.exchange()
    assert (after.status, after.provider_handle, after.answered_at) == ("requested", None, None)
    assert await world.count(ExchangeMessage) == 0
    assert await world.count(Notification) == 0
    errors = [e.error or "" for e in await world.rows(InboxEntry) if e.state == "ignored"]
    assert len(errors) == 6 and all(errors), errors


async def test_the_requesters_side_cannot_accept_its_own_request(world: World) -> None:
    offer, agreement = await garden_offer(world)
    accept = activity(
        world.garden,
        "Accept",
        "garden",
        offer["id"],
        result=build_agreement(replace(agreement, status="accepted", provider_member="x@y")),
    )
    assert await world.send(world.garden, accept) == "ignored"
    exchange = await world.exchange()
    assert (exchange.status, exchange.answered_at) == ("requested", None)
    assert exchange.provider_handle == "ada@tools.test"
    # Nor complete what only this node could have accepted, and has not.
    update = activity(
        world.garden,
        "Update",
        "garden",
        build_agreement(replace(agreement, status="completed")),
    )
    assert await world.send(world.garden, update) == "ignored"
    assert (await world.exchange()).status == "requested"


async def test_a_blocked_server_can_neither_ask_nor_be_asked(world: World) -> None:
    async with world.node.client.app[SESSIONS]() as db:
        await BlockRepository(db).add(world.garden.host)
        await db.commit()
    drill = await our_offer(world)
    offer = activity(
        world.garden, "Offer", "garden", build_agreement(garden_agreement(world, drill["ap_id"]))
    )
    url = str(world.node.client.make_url("/c/tools/inbox"))
    status, _, _ = await world.garden.post(world.http, url, offer, host=HOST)
    assert status in (401, 403)
    assert await world.count(Exchange) == 0
    assert await world.count(Notification) == 0

    # Bob cannot ask for a listing a blocked server's community published.
    status, body = await bob_asks(world, await garden_listing(world))
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    assert await world.count(Exchange) == 0
