"""Queries behind the community directory (browsing listings: `storage.repositories.browse`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, CommunityPartnership
from storage.paging import Column, Position, page_after
from storage.repositories.block_cache import blocked_community_ids
from storage.repositories.browse import (
    DISTANCE,
    NEWEST,
    RELEVANCE,
    BrowseFilters,
    BrowseRepository,
    Found,
)
from storage.search import NO_DISTANCE_KM, Located, Point, distance_km, within
from storage.states import PartnershipState

__all__ = [
    "DISTANCE",
    "NEWEST",
    "RELEVANCE",
    "BrowseFilters",
    "BrowseRepository",
    "DirectoryEntry",
    "DirectoryFilters",
    "DirectoryRepository",
    "Found",
]

DIRECTORY_TYPES = ("Group", "Organization")
"""Actor types listed as communities (a Mastodon user who follows us is not one)."""
LIVE_PARTNERSHIP = (PartnershipState.PROPOSED, PartnershipState.PENDING, PartnershipState.ACTIVE)


# --- the directory -------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryFilters:
    q: str | None = None
    point: Point | None = None
    radius_km: float | None = None


@dataclass(frozen=True)
class DirectoryEntry:
    community: Community
    sort: str | float


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DirectoryRepository:
    """Every community the node knows that may be listed to a given local community."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, viewer_id: int, filters: DirectoryFilters, after: Position | None, limit: int
    ) -> list[DirectoryEntry]:
        """Nearest first when a point is given, else by name; up to `limit + 1` entries.

        A community that opted out of directories is still shown to its own
        members and to a community in a partnership with it, who know it anyway.
        """
        known_to_viewer = select(CommunityPartnership.remote_community_id).where(
            CommunityPartnership.local_community_id == viewer_id,
            CommunityPartnership.state.in_(LIVE_PARTNERSHIP),
        )
        conditions: list[ColumnElement[bool]] = [
            Community.actor_type.in_(DIRECTORY_TYPES),
            or_(
                Community.is_discoverable.is_(True),
                Community.id == viewer_id,
                Community.id.in_(known_to_viewer),
            ),
        ]
        blocked = await blocked_community_ids(self.session)
        if blocked:
            conditions.append(Community.id.not_in(blocked))
        if filters.q:
            pattern = _like(filters.q)
            conditions.append(
                or_(
                    func.lower(Community.name).like(pattern, escape="\\"),
                    func.lower(Community.description).like(pattern, escape="\\"),
                )
            )
        point = filters.point
        key: Column
        if point is not None:
            located: list[Located] = [
                (Community.latitude, Community.longitude, Community.latitude.is_not(None))
            ]
            conditions.append(within(self.session, point, filters.radius_km, located))
            distance = distance_km(self.session, point, Community.latitude, Community.longitude)
            key = func.coalesce(distance, literal(NO_DISTANCE_KM))
        else:
            key = Community.name
        query = select(Community, key.label("sort_key")).where(*conditions)
        page = page_after(query, key, Community.ap_id, after, limit, descending=False)
        rows = await self.session.execute(page)
        return [
            DirectoryEntry(row, value if isinstance(value, str) else float(value))
            for row, value in rows.all()
        ]

    async def partnership_states(self, viewer_id: int, community_ids: list[int]) -> dict[int, str]:
        """The latest partnership state between the viewer and each of `community_ids`."""
        if not community_ids:
            return {}
        rows = await self.session.execute(
            select(CommunityPartnership.remote_community_id, CommunityPartnership.state)
            .where(
                CommunityPartnership.local_community_id == viewer_id,
                CommunityPartnership.remote_community_id.in_(community_ids),
            )
            .order_by(CommunityPartnership.updated_at)
        )
        return {community_id: state for community_id, state in rows.all()}
