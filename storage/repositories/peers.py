from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, KnownPeer
from storage.repositories.actors import BlockRepository, host_is_blocked

MAX_PUBLISHED_PEERS = 1000


class KnownPeerRepository:
    """Nodes stewards pointed us at; refreshed periodically to learn new communities."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, base_url: str) -> KnownPeer | None:
        result = await self.session.execute(select(KnownPeer).where(KnownPeer.base_url == base_url))
        return result.scalar_one_or_none()

    async def upsert(self, base_url: str, added_by_community_id: int | None) -> KnownPeer:
        peer = await self.get(base_url)
        if peer is None:
            peer = KnownPeer(base_url=base_url, added_by_community_id=added_by_community_id)
            self.session.add(peer)
            await self.session.flush()
        return peer

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
