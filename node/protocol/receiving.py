"""Whose listings we keep: the one rule the inbox, its batches and relays share."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community
from storage.repositories.follows import FollowRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.states import Audience


async def receivable(
    session: AsyncSession, senders: Collection[tuple[Community, str]]
) -> set[tuple[int, str]]:
    """The (origin id, audience) pairs among `senders` whose listings we keep, in two
    queries: public listings from communities we follow or partner with; partner
    listings only from an active partner."""
    origins = {origin.id for origin, _ in senders}
    partnered = await PartnershipRepository(session).partnered_among(origins)
    public = {o.ap_id for o, a in senders if a == Audience.PUBLIC and o.id not in partnered}
    followed = await FollowRepository(session).followed_among(public)
    return {
        (origin.id, audience)
        for origin, audience in senders
        if origin.id in partnered or (audience == Audience.PUBLIC and origin.ap_id in followed)
    }


async def may_receive(session: AsyncSession, origin: Community, audience: str) -> bool:
    """`receivable` for one origin and audience."""
    return (origin.id, audience) in await receivable(session, [(origin, audience)])
