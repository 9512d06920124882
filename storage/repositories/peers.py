from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import insert_ignoring_conflicts
from storage.models import Community, KnownPeer, utcnow
from storage.repositories.actors import BlockRepository, host_is_blocked

MAX_PUBLISHED_PEERS = 1000
_CHUNK = 500  # bound parameters per IN (SQLite allows 32766, older builds 999)


class KnownPeerRepository:
    """Nodes stewards pointed us at; refreshed periodically to learn new communities."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, base_url: str) -> KnownPeer | None:
        result = await self.session.execute(select(KnownPeer).where(KnownPeer.base_url == base_url))
        return result.scalar_one_or_none()

    async def upsert(self, base_url: str, added_by_community_id: int | None) -> KnownPeer:
        """The node's row, added if new; safe when a crawl records the same node at once
        (the demo's nodes, learning each other, raced so into a unique-key error)."""
        row = {
            "base_url": base_url,
            "added_by_community_id": added_by_community_id,
            "created_at": utcnow(),
        }
        await insert_ignoring_conflicts(
            self.session, KnownPeer, [row], conflict_columns=["base_url"]
        )
        peer = await self.get(base_url)
        assert peer is not None
        return peer

    async def add_learned(self, base_url: str, depth: int, learned_from: str) -> bool:
        """Record a node another one listed; False if it is known already (safe when two
        crawls record the same node at once)."""
        row = {
            "base_url": base_url,
            "depth": depth,
            "learned_from": learned_from,
            "created_at": utcnow(),
        }
        inserted = await insert_ignoring_conflicts(
            self.session, KnownPeer, [row], conflict_columns=["base_url"]
        )
        return inserted == 1

    async def depths(self, base_urls: Sequence[str]) -> dict[str, int]:
        """The recorded depth of each of `base_urls` we know (in a few queries, not one each)."""
        found: dict[str, int] = {}
        for start in range(0, len(base_urls), _CHUNK):
            chunk = list(base_urls[start : start + _CHUNK])
            result = await self.session.execute(
                select(KnownPeer.base_url, KnownPeer.depth).where(KnownPeer.base_url.in_(chunk))
            )
            found.update({url: depth for url, depth in result.all()})
        return found

    async def shorten(self, learned_from: str, depth: int, base_urls: Sequence[str]) -> None:
        """A shorter way to known nodes: record it (their depth only ever goes down)."""
        for start in range(0, len(base_urls), _CHUNK):
            chunk = list(base_urls[start : start + _CHUNK])
            await self.session.execute(
                update(KnownPeer)
                .where(KnownPeer.base_url.in_(chunk), KnownPeer.depth > depth)
                .values(depth=depth, learned_from=learned_from)
            )

    async def count(self) -> int:
        result = await self.session.execute(select(func.count()).select_from(KnownPeer))
        return int(result.scalar_one())

    async def due(self, read_before: datetime) -> Sequence[KnownPeer]:
        """The nodes not read since `read_before` (never-read ones included); at most
        the node's limit on known nodes, so a round's choice is made in memory."""
        result = await self.session.execute(
            select(KnownPeer)
            .where(KnownPeer.last_checked_at.is_(None) | (KnownPeer.last_checked_at < read_before))
            .order_by(KnownPeer.id)
        )
        return result.scalars().all()

    async def list(self) -> Sequence[KnownPeer]:
        result = await self.session.execute(select(KnownPeer).order_by(KnownPeer.id))
        return result.scalars().all()

    async def published(self, own_base_url: str) -> tuple[str, ...]:
        """Base URLs of the nodes we tell others about, sorted: nodes we have read,
        and the nodes of discoverable communities we know; never a blocked one."""
        checked = await self.session.execute(
            select(KnownPeer.base_url).where(KnownPeer.last_checked_at.is_not(None))
        )
        hosting = await self.session.execute(
            select(Community.base_url)
            .where(
                Community.is_local.is_(False),
                Community.is_discoverable.is_(True),
                Community.actor_type.in_(("Group", "Organization")),
            )
            .distinct()
        )
        blocked = await BlockRepository(self.session).domains()
        urls = {*checked.scalars(), *hosting.scalars()} - {own_base_url}
        shown = [url for url in urls if not host_is_blocked(blocked, url.partition("://")[2])]
        return tuple(sorted(shown)[:MAX_PUBLISHED_PEERS])
