from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community


class CommunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, community_id: int) -> Community | None:
        return await self.session.get(Community, community_id)

    async def get_by_ap_id(self, ap_id: str) -> Community | None:
        result = await self.session.execute(select(Community).where(Community.ap_id == ap_id))
        return result.scalar_one_or_none()

    async def get_by_ap_ids(self, ap_ids: Sequence[str]) -> Sequence[Community]:
        if not ap_ids:
            return []
        result = await self.session.execute(select(Community).where(Community.ap_id.in_(ap_ids)))
        return result.scalars().all()

    async def get_local_by_slug(self, slug: str) -> Community | None:
        result = await self.session.execute(
            select(Community).where(Community.is_local.is_(True), Community.slug == slug)
        )
        return result.scalar_one_or_none()

    async def list_local(self) -> Sequence[Community]:
        result = await self.session.execute(
            select(Community).where(Community.is_local.is_(True)).order_by(Community.id)
        )
        return result.scalars().all()

    async def add(self, community: Community) -> Community:
        self.session.add(community)
        await self.session.flush()
        return community
