"""Relay subscriptions: which relays our communities follow, and how much each may ask of us."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Relay, RemoteListing, utcnow
from storage.states import Audience, RelayState

FETCH_WINDOW = timedelta(minutes=1)


class RelayRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, relay_id: str) -> Relay | None:
        return await self.session.get(Relay, relay_id)

    async def get_for_community(self, local_community_id: int, actor_id: str) -> Relay | None:
        return await self.session.scalar(
            select(Relay).where(
                Relay.local_community_id == local_community_id, Relay.actor_id == actor_id
            )
        )

    async def get_by_follow_id(self, follow_activity_id: str) -> Relay | None:
        return await self.session.scalar(
            select(Relay).where(Relay.follow_activity_id == follow_activity_id).limit(1)
        )

    async def list_for_community(self, local_community_id: int) -> Sequence[Relay]:
        result = await self.session.execute(
            select(Relay)
            .where(Relay.local_community_id == local_community_id)
            .order_by(Relay.created_at, Relay.id)
        )
        return result.scalars().all()

    async def active_inboxes(self, local_community_id: int) -> frozenset[str]:
        """Inboxes of the relays `local_community_id` has an accepted subscription to."""
        result = await self.session.execute(
            select(Relay.inbox_url).where(
                Relay.local_community_id == local_community_id,
                Relay.state == RelayState.ACTIVE,
            )
        )
        return frozenset(result.scalars())

    async def active_by_actor(self, actor_id: str) -> Relay | None:
        """One accepted subscription to the relay `actor_id`, from any of our communities."""
        return await self.session.scalar(
            select(Relay)
            .where(Relay.actor_id == actor_id, Relay.state == RelayState.ACTIVE)
            .order_by(Relay.created_at)
            .limit(1)
        )

    async def add(
        self,
        *,
        local_community_id: int,
        actor_id: str,
        inbox_url: str,
        name: str | None,
        follow_activity_id: str,
    ) -> Relay:
        relay = Relay(
            local_community_id=local_community_id,
            actor_id=actor_id,
            inbox_url=inbox_url,
            name=name,
            follow_activity_id=follow_activity_id,
            state=RelayState.PENDING,
            fetch_window_count=0,
        )
        self.session.add(relay)
        await self.session.flush()
        return relay

    async def set_state(self, relay: Relay, state: RelayState) -> None:
        relay.state = state
        relay.updated_at = utcnow()
        await self.session.flush()

    async def delete(self, relay: Relay) -> None:
        await self.session.delete(relay)
        await self.session.flush()

    async def spend_fetch(self, relay: Relay, per_minute: int, now: datetime | None = None) -> bool:
        """Count one fetch against the relay's budget for the current minute; False when
        the budget is spent (the fetch must not happen)."""
        now = now or utcnow()
        start = relay.fetch_window_start
        if start is None or now - start >= FETCH_WINDOW or now < start:
            relay.fetch_window_start = now
            relay.fetch_window_count = 0
        if relay.fetch_window_count >= per_minute:
            return False
        relay.fetch_window_count += 1
        await self.session.flush()
        return True


async def public_listings_from(session: AsyncSession, origin_community_id: int) -> int:
    """How many public listings of one other community the mirror holds."""
    count = await session.scalar(
        select(func.count())
        .select_from(RemoteListing)
        .where(
            RemoteListing.origin_community_id == origin_community_id,
            RemoteListing.audience == Audience.PUBLIC,
        )
    )
    return int(count or 0)
