"""Retired community keys: kept after a rotation, published until their grace period ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, RetiredKey


class RetiredKeyRepository:
    """Queries for retired keys; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def retire(self, community: Community, now: datetime, grace: timedelta) -> RetiredKey:
        """Keep `community`'s current public key as retired, verifying until `now + grace`."""
        if not community.key_id or not community.public_key_pem:
            raise ValueError(f"{community.ap_id} has no key to retire")
        retired = RetiredKey(
            community_id=community.id,
            key_id=community.key_id,
            public_key_pem=community.public_key_pem,
            retired_at=now,
            expires_at=now + grace,
        )
        self.session.add(retired)
        await self.session.flush()
        return retired

    async def in_grace(self, community_id: int, now: datetime) -> list[RetiredKey]:
        """The community's retired keys that still verify, newest first."""
        rows = await self.session.scalars(
            select(RetiredKey)
            .where(RetiredKey.community_id == community_id, RetiredKey.expires_at > now)
            .order_by(RetiredKey.retired_at.desc(), RetiredKey.id.desc())
        )
        return list(rows)

    async def prune(self, now: datetime) -> int:
        """Forget keys whose grace period is over."""
        result = await self.session.execute(delete(RetiredKey).where(RetiredKey.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
