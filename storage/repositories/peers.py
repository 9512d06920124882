from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import KnownPeer


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
