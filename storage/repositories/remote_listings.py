"""The mirror cache. A cached listing belongs to the community it was first
received from: only that community can change it, and its clock cannot be
used to freeze it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, CommunityPartnership, RemoteListing, utcnow
from storage.paging import Position
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.repositories.browse import Found, mirror_sources, newest
from storage.repositories.images import ImageRepository
from storage.repositories.listings import ListingFilters, words_match
from storage.states import Audience, ListingStatus, PartnershipState


class NotTheOrigin(Exception):
    """Another community tried to change a listing cached from its origin."""


def _clamped(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A `published` or `updated` in the future is taken as now: otherwise one
    far-future stamp would make every later, honest version look older."""
    return {
        key: min(value, now) if key in _STAMPS and isinstance(value, datetime) else value
        for key, value in fields.items()
    }


_STAMPS = frozenset({"published_at", "remote_updated_at"})


class RemoteListingRepository:
    """The mirror cache of listings other communities shared with us."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_ap_id(self, ap_id: str) -> RemoteListing | None:
        result = await self.session.execute(
            select(RemoteListing).where(RemoteListing.ap_id == ap_id)
        )
        return result.scalar_one_or_none()

    async def upsert(
        self, ap_id: str, origin: Community, audience: str, fields: dict[str, Any]
    ) -> RemoteListing:
        """Insert or refresh; an older version (by the origin's `updated`) never wins.

        Raises `NotTheOrigin` when `origin` is not the community the listing
        was first cached from: one actor cannot rewrite another's listing,
        even on the same host.
        """
        now = utcnow()
        fields = _clamped(fields, now)
        cached = await self.get_by_ap_id(ap_id)
        if cached is not None and cached.origin_community_id != origin.id:
            raise NotTheOrigin(f"{ap_id} was received from another community than {origin.ap_id}")
        if cached is None:
            cached = RemoteListing(ap_id=ap_id, origin_community_id=origin.id, **fields)
            cached.audience = audience
            cached.received_at = now
            cached.shown_at = cached.published_at or now
            self.session.add(cached)
        else:
            newer = fields.get("remote_updated_at")
            if cached.remote_updated_at and newer and newer < cached.remote_updated_at:
                return cached
            for key, value in fields.items():
                setattr(cached, key, value)
            cached.audience = audience
            cached.is_tombstoned = False
            cached.updated_at = now
            cached.shown_at = cached.published_at or cached.received_at
        await self.session.flush()
        return cached

    async def remove(self, ap_id: str) -> bool:
        await ImageRepository(self.session).forget_remote(RemoteListing.ap_id == ap_id)
        result = await self.session.execute(
            delete(RemoteListing).where(RemoteListing.ap_id == ap_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_from_origin(self, origin_community_id: int, audience: str) -> int:
        await ImageRepository(self.session).forget_remote(
            (RemoteListing.origin_community_id == origin_community_id)
            & (RemoteListing.audience == audience)
        )
        result = await self.session.execute(
            delete(RemoteListing).where(
                RemoteListing.origin_community_id == origin_community_id,
                RemoteListing.audience == audience,
            )
        )
        return int(getattr(result, "rowcount", 0))

    async def list_visible(
        self, audiences: Sequence[str], filters: ListingFilters = ListingFilters()
    ) -> list[RemoteListing]:
        """Cached listings shared under `audiences`, hiding those from blocked domains."""
        query = select(RemoteListing).where(
            RemoteListing.audience.in_(audiences), RemoteListing.is_tombstoned.is_(False)
        )
        if filters.kind:
            query = query.where(RemoteListing.kind == filters.kind)
        if filters.category:
            query = query.where(RemoteListing.category == filters.category)
        if filters.status:
            query = query.where(RemoteListing.status == filters.status)
        query = query.order_by(RemoteListing.published_at.desc(), RemoteListing.id)
        result = await self.session.execute(query.limit(filters.limit).offset(filters.offset))
        blocked = await BlockRepository(self.session).domains()
        return [
            listing
            for listing in result.scalars().all()
            if not host_is_blocked(blocked, listing.origin_community.host)
        ]

    async def list_from_origin(
        self, origin_community_id: int, audience: str
    ) -> Sequence[RemoteListing]:
        result = await self.session.execute(
            select(RemoteListing).where(
                RemoteListing.origin_community_id == origin_community_id,
                RemoteListing.audience == audience,
            )
        )
        return result.scalars().all()

    async def _blocked_origins(self) -> list[int]:
        """Origins of cached listings whose host is blocked; the block list is usually empty."""
        blocked = await BlockRepository(self.session).domains()
        if not blocked:
            return []
        origins = await self.session.execute(
            select(Community.id, Community.host).where(
                Community.id.in_(select(RemoteListing.origin_community_id).distinct())
            )
        )
        return [origin_id for origin_id, host in origins if host_is_blocked(blocked, host)]

    @staticmethod
    def _shown_to(
        community_id: int, include_public: bool, include_partners: bool
    ) -> ColumnElement[bool] | None:
        """The mirror rows local community `community_id` may see, blocks aside.

        Public listings are for every community on the node; a partner-only
        listing only for a community in an active partnership with its origin,
        so one community's partnership ending changes nothing for another's.
        """
        shown: list[ColumnElement[bool]] = []
        if include_public:
            shown.append(RemoteListing.audience == Audience.PUBLIC)
        if include_partners:
            partnered = select(CommunityPartnership.remote_community_id).where(
                CommunityPartnership.local_community_id == community_id,
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
            shown.append(
                (RemoteListing.audience == Audience.PARTNERS)
                & RemoteListing.origin_community_id.in_(partnered)
            )
        if not shown:
            return None
        return or_(*shown) & RemoteListing.is_tombstoned.is_(False)

    async def get_visible_to(self, community_id: int, listing_id: str) -> RemoteListing | None:
        """One mirrored listing by its local id, if local community `community_id` may see it."""
        shown = self._shown_to(community_id, include_public=True, include_partners=True)
        assert shown is not None
        query = select(RemoteListing).where(RemoteListing.id == listing_id, shown)
        cached = (await self.session.scalars(query)).one_or_none()
        if cached is None:
            return None
        blocked = await BlockRepository(self.session).domains()
        return None if host_is_blocked(blocked, cached.origin_community.host) else cached

    async def page_visible_to(
        self,
        community_id: int,
        filters: ListingFilters,
        after: Position | None,
        limit: int,
        *,
        include_public: bool,
        include_partners: bool,
    ) -> list[Found]:
        """What local community `community_id` may show of the mirror, newest first, paged.

        One index walk per audience and status, merged; blocked origins are
        left out in the query, before the limit.
        """
        statuses = [filters.status] if filters.status else list(ListingStatus)
        sources = await mirror_sources(
            self.session,
            community_id,
            public=include_public,
            partners=include_partners,
            statuses=statuses,
        )
        extra: list[tuple[str, Any]] = []
        if filters.kind:
            extra.append(("kind", filters.kind))
        if filters.category:
            extra.append(("category", filters.category))
        if filters.q:
            extra.append(("where", words_match(self.session, RemoteListing, "remote", filters.q)))
        return await newest(self.session, sources, extra, after, limit)
