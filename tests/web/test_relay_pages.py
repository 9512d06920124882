"""Relays on the steward's federation page, on SQLite and PostgreSQL: subscribing by
address, the state shown, a refused address kept in the form, and unsubscribing."""

from __future__ import annotations

import html

import orjson
from sqlalchemy import select

from node.appkeys import SESSIONS
from storage.models import Delivery, Relay
from tests.conftest import NodeHandle
from tests.support.fake_relay import fake_relay
from tests.web.test_federation_pages import as_person


async def _rows(node: NodeHandle, model: type) -> list:  # type: ignore[type-arg]
    async with node.client.app[SESSIONS]() as session:
        return list(await session.scalars(select(model)))


async def test_a_steward_subscribes_to_a_relay_from_the_page_and_unsubscribes(
    node: NodeHandle,
) -> None:
    steward = await as_person(node, "stew", "steward")
    async with fake_relay() as relay:
        response = await steward.submit("/steward/federation/relays", {"url": relay.inbox})
        assert response.status == 303, await response.text()
    page = await steward.page()
    assert "Test relay" in page and "Waiting for the relay" in page
    assert relay.actor_id in page

    [subscription] = await _rows(node, Relay)
    async with node.client.app[SESSIONS]() as session:
        stored = await session.get(Relay, subscription.id)
        assert stored is not None
        stored.state = "active"
        await session.commit()
    assert "Subscribed" in await steward.page()

    response = await steward.submit("/steward/federation/relays/remove", {"relay": subscription.id})
    assert response.status == 303
    assert await _rows(node, Relay) == []
    kinds = [orjson.loads(d.body)["type"] for d in await _rows(node, Delivery)]
    assert sorted(kinds) == ["Follow", "Undo"]
    assert "No relay yet." in await steward.page()


async def test_an_address_that_is_no_relay_changes_nothing_and_stays_in_the_form(
    node: NodeHandle,
) -> None:
    steward = await as_person(node, "stew", "steward")
    address = "http://127.0.0.1:9/actor"
    response = await steward.submit("/steward/federation/relays", {"url": address})
    assert response.status == 422
    text = html.unescape(await response.text())
    assert "Nothing was changed" in text and f'value="{address}"' in text
    assert await _rows(node, Relay) == [] and await _rows(node, Delivery) == []


async def test_members_cannot_subscribe_the_community_to_a_relay(node: NodeHandle) -> None:
    member = await as_person(node, "mem", "member")
    page = await member.get("/steward/federation")
    assert page.status == 403
    response = await member.post("/steward/federation/relays", {"url": "http://relay.test/actor"})
    assert response.status in (400, 403)
    assert await _rows(node, Relay) == []
