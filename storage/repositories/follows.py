from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Follow, utcnow
from storage.states import FollowState


class FollowRepository:
    """Plain follows: who receives our public listings, and whose we receive."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, direction: str, local_community_id: int, remote_actor: str
    ) -> Follow | None:
        result = await self.session.execute(
            select(Follow).where(
                Follow.direction == direction,
                Follow.local_community_id == local_community_id,
                Follow.remote_actor == remote_actor,
            )
        )
        return result.scalar_one_or_none()

    async def get_by_activity_id(self, follow_activity_id: str) -> Follow | None:
        result = await self.session.execute(
            select(Follow).where(Follow.follow_activity_id == follow_activity_id)
        )
        return result.scalars().first()

    async def upsert(
        self,
        *,
        direction: str,
        local_community_id: int,
        remote_actor: str,
        follow_activity_id: str,
        state: str,
        remote_inbox: str | None = None,
        remote_shared_inbox: str | None = None,
    ) -> Follow:
        follow = await self.get(direction, local_community_id, remote_actor)
        if follow is None:
            follow = Follow(
                direction=direction,
                local_community_id=local_community_id,
                remote_actor=remote_actor,
                follow_activity_id=follow_activity_id,
                state=state,
            )
            self.session.add(follow)
        follow.follow_activity_id = follow_activity_id
        follow.state = state
        follow.remote_inbox = remote_inbox or follow.remote_inbox
        follow.remote_shared_inbox = remote_shared_inbox or follow.remote_shared_inbox
        follow.updated_at = utcnow()
        await self.session.flush()
        return follow

    async def delete(self, follow: Follow) -> None:
        await self.session.delete(follow)
        await self.session.flush()

    async def followers(self, local_community_id: int) -> Sequence[Follow]:
        result = await self.session.execute(
            select(Follow).where(
                Follow.direction == "in",
                Follow.local_community_id == local_community_id,
                Follow.state == FollowState.ACTIVE,
            )
        )
        return result.scalars().all()

    async def follower_inboxes(
        self, local_community_id: int
    ) -> Sequence[tuple[str | None, str | None]]:
        """(inbox, shared inbox) of each active follower: only the two columns,
        since a fan-out reads them for every follower, at publishing and at send time."""
        result = await self.session.execute(
            select(Follow.remote_inbox, Follow.remote_shared_inbox).where(
                Follow.direction == "in",
                Follow.local_community_id == local_community_id,
                Follow.state == FollowState.ACTIVE,
            )
        )
        return [(inbox, shared) for inbox, shared in result]

    async def following(self, remote_actor: str) -> Sequence[Follow]:
        """Our communities' follows of one remote actor (any state)."""
        result = await self.session.execute(
            select(Follow).where(Follow.direction == "out", Follow.remote_actor == remote_actor)
        )
        return result.scalars().all()

    async def followed_among(self, remote_actors: Collection[str]) -> set[str]:
        """Those of `remote_actors` one of our communities follows or has asked to."""
        if not remote_actors:
            return set()
        result = await self.session.scalars(
            select(Follow.remote_actor)
            .where(
                Follow.direction == "out",
                Follow.remote_actor.in_(sorted(remote_actors)),
                Follow.state.in_((FollowState.PENDING, FollowState.ACTIVE)),
            )
            .distinct()
        )
        return set(result.all())

    async def following_from(self, local_community_id: int) -> Sequence[Follow]:
        """Follows one of our communities sent (any state)."""
        result = await self.session.execute(
            select(Follow).where(
                Follow.direction == "out", Follow.local_community_id == local_community_id
            )
        )
        return result.scalars().all()
