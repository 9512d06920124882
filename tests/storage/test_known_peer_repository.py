"""Known peers: a node a steward adds and one a crawl records at the same moment, on both
databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import KnownPeer
from storage.repositories.peers import KnownPeerRepository

Sessions = async_sessionmaker[AsyncSession]
NODE = "https://garden.example"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def test_adding_a_node_a_crawl_recorded_meanwhile_keeps_one_row(sessions: Sessions) -> None:
    async with sessions() as steward, sessions() as crawl:
        assert await KnownPeerRepository(crawl).add_learned(NODE, 2, "https://other.example")
        await crawl.commit()
        peer = await KnownPeerRepository(steward).upsert(NODE, None)
        await steward.commit()
        assert peer.base_url == NODE and peer.depth == 2
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(KnownPeer)) == 1


async def test_two_adds_of_the_same_node_at_once_both_succeed(sessions: Sessions) -> None:
    async def add() -> int:
        async with sessions() as session:
            peer = await KnownPeerRepository(session).upsert(NODE, None)
            await session.commit()
            return peer.id

    first, second = await asyncio.gather(add(), add())
    assert first == second
