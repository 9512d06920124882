"""The inbox against a hostile remote, in a node on SQLite and PostgreSQL.

A fake server on 127.0.0.1 plays the remote: it proposes partnerships from
communities it makes up, sends malformed notes, names keys whose owner lives
elsewhere, and gets itself blocked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from node.app import init_app
from node.appkeys import SESSIONS
from node.config import ConfigError, load_config, write_config
from node.protocol.inbox import INBOX_RECEIVER
from node.protocol.key_resolver import FetchSlots
from storage.models import CommunityPartnership, InboxEntry
from storage.repositories import BlockRepository
from tests.conftest import create_node_community
from tests.support.api import eventually
from tests.support.fake_remote import FakeRemote, fake_keys, fake_remote

HOST = "tools.test"
COMMUNITY = f"http://{HOST}/c/tools"


@dataclass
class Node:
    client: TestClient[Any, Any]
    http: aiohttp.ClientSession

    @property
    def inbox(self) -> str:
        return str(self.client.make_url("/c/tools/inbox"))

    async def post(self, remote: FakeRemote, activity: dict[str, Any], **kw: Any) -> int:
        return (await remote.post(self.http, self.inbox, activity, host=HOST, **kw))[0]

    async def entries(self) -> list[InboxEntry]:
        async with self.client.app[SESSIONS]() as session:
            rows = await session.scalars(select(InboxEntry).order_by(InboxEntry.id))
            return list(rows.all())

    async def settled(self) -> list[InboxEntry]:
        """The inbox log once the processor has handled everything in it."""

        async def done() -> list[InboxEntry]:
            entries = await self.entries()
            assert entries and all(e.state != "received" for e in entries), entries
            return entries

        return await eventually(done)

    async def pending_from(self) -> list[str]:
        async with self.client.app[SESSIONS]() as session:
            rows = await session.scalars(
                select(CommunityPartnership).where(CommunityPartnership.state == "pending")
            )
            return sorted(p.remote_community.ap_id for p in rows.all())


@pytest.fixture
async def node(tmp_path: Path, database_url: str, aiohttp_client: Any) -> AsyncIterator[Node]:
    data = tmp_path / "node"
    data.mkdir()
    write_config(
        data,
        base_url=f"http://{HOST}",
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    )
    with (data / "config.toml").open("a") as extra:
        extra.write("max_pending_proposals_per_host = 2\nfollow_rate_burst = 50\n")
    config = load_config(data)
    assert config.max_pending_proposals_per_host == 2
    await create_node_community(config)
    client = await aiohttp_client(init_app(config))
    async with aiohttp.ClientSession() as http:
        yield Node(client, http)


async def test_pending_proposals_from_one_host_are_capped(node: Node) -> None:
    async with fake_remote() as evil, fake_remote() as honest:
        for n in range(4):
            evil.add_actor(f"fake{n}")
            proposal = evil.activity("Follow", f"fake{n}", COMMUNITY, partnership=True)
            assert await node.post(evil, proposal) == 202
        honest.add_actor("garden")
        proposal = honest.activity("Follow", "garden", COMMUNITY, partnership=True)
        assert await node.post(honest, proposal) == 202
        entries = await node.settled()
    assert [e.state for e in entries] == ["handled", "handled", "ignored", "ignored", "handled"]
    assert "already has 2 proposals waiting" in (entries[2].error or "")
    assert await node.pending_from() == sorted(
        [evil.actor_id("fake0"), evil.actor_id("fake1"), honest.actor_id("garden")]
    )


async def test_malformed_note_is_logged_as_one_line_with_its_reason(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async with fake_remote() as remote:
        remote.add_actor("garden")
        note = {"id": f"{remote.actor_id('garden')}/notes/1", "type": "Note", "published": "soon"}
        create = remote.activity("Create", "garden", note)
        with caplog.at_level(logging.INFO):
            assert await node.post(remote, create) == 202
            [entry] = await node.settled()
    assert entry.state == "failed" and "published" in (entry.error or "")
    about_it = [r for r in caplog.records if create["id"] in r.getMessage()]
    assert len(about_it) == 1, [r.getMessage() for r in about_it]
    [record] = about_it
    assert record.levelno == logging.WARNING
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "published" in record.getMessage()
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("federation"))


async def test_key_whose_owner_is_on_another_host_is_not_followed(node: Node) -> None:
    async with fake_remote() as evil, fake_remote() as victim:
        victim.add_actor("garden")
        evil.documents["/keys/1"] = {
            "@context": "https://w3id.org/security/v1",
            "id": f"{evil.base}/keys/1",
            "type": "Key",
            "owner": victim.actor_id("garden"),
            "publicKeyPem": fake_keys()[1],
        }
        evil.add_actor("mallory")
        follow = evil.activity("Follow", "mallory", COMMUNITY)
        assert await node.post(evil, follow, key_id=f"{evil.base}/keys/1") == 401
    assert [seen.path for seen in evil.requests("GET")] == ["/keys/1"]
    assert victim.seen == []


async def test_keys_on_a_blocked_host_are_no_longer_trusted(node: Node) -> None:
    async with fake_remote() as remote:
        remote.add_actor("garden")
        key_id = f"{remote.actor_id('garden')}#main-key"
        assert await node.post(remote, remote.activity("Follow", "garden", COMMUNITY)) == 202
        resolve = node.client.app[INBOX_RECEIVER].resolve_key
        assert (await resolve(key_id)) is not None
        async with node.client.app[SESSIONS]() as session:
            await BlockRepository(session).add(remote.host)
            await session.commit()
        fetches = len(remote.requests("GET"))
        assert await resolve(key_id) is None
        assert await resolve(key_id, refresh=True) is None
        assert len(remote.requests("GET")) == fetches


def test_fetch_slots_bound_the_total_and_each_host() -> None:
    slots = FetchSlots(max_in_flight=3, max_per_host=2)
    assert [slots.try_acquire("a") for _ in range(3)] == [True, True, False]
    assert slots.try_acquire("b") is True
    assert slots.try_acquire("c") is False, "three in flight in all"
    slots.release("a")
    assert slots.try_acquire("c") is True
    assert slots.in_flight == 3


def test_limit_settings_must_be_whole_numbers(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        base_url="http://tools.test",
        slug="tools",
        name="Tools",
        database_url=None,
        allow_private_addresses=False,
    )
    default = load_config(tmp_path)
    assert (default.follow_rate_burst, default.max_pending_proposals_per_host) == (20, 3)
    original = (tmp_path / "config.toml").read_text()
    for bad in ("-1", "true", '"ten"', "1.5"):
        (tmp_path / "config.toml").write_text(original + f"follow_rate_burst = {bad}\n")
        with pytest.raises(ConfigError, match="follow_rate_burst"):
            load_config(tmp_path)
