"""Queries behind network discovery: the community directory and browsing the cache.

Browsing reads two tables, our own `listings` and the mirror
`remote_listings`. Each gives at most `limit + 1` rows after the cursor in
the same order (newest, distance or relevance, then AP id), so that merged
and cut to `limit` they are exactly the next page. What a community may see
is decided here in SQL, before the limit, so a page is never short because
something was hidden afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Community, CommunityPartnership, Listing, RemoteListing
from storage.paging import Column, Position, page_after
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.search import (
    NO_DISTANCE_KM,
    Located,
    Point,
    TextMatch,
    distance_km,
    terms,
    text_match,
    within,
)
from storage.states import Audience, ListingStatus, PartnershipState, Visibility

_Ts = TypeVarTuple("_Ts")
NEWEST, DISTANCE, RELEVANCE = "newest", "distance", "relevance"
DIRECTORY_TYPES = ("Group", "Organization")
"""Actor types listed as communities (a Mastodon user who follows us is not one)."""
LIVE_PARTNERSHIP = (PartnershipState.PROPOSED, PartnershipState.PENDING, PartnershipState.ACTIVE)


@dataclass(frozen=True)
class BrowseFilters:
    q: str | None = None
    kind: str | None = None
    category: str | None = None
    community_slug: str | None = None
    community_host: str | None = None
    origin: str | None = None  # local | partner | public
    point: Point | None = None
    radius_km: float | None = None
    sort: str = NEWEST


@dataclass(frozen=True)
class Found:
    """A row of either table and its sort value (what the next cursor is made of)."""

    row: Listing | RemoteListing
    sort: datetime | float

    @property
    def ap_id(self) -> str:
        return self.row.ap_id


def partnered_ids(community_id: int) -> Select[Any]:
    return select(CommunityPartnership.remote_community_id).where(
        CommunityPartnership.local_community_id == community_id,
        CommunityPartnership.state == PartnershipState.ACTIVE,
    )


async def blocked_community_ids(session: AsyncSession) -> list[int]:
    """Communities on a blocked host; the block list is usually empty, then this is free."""
    blocked = await BlockRepository(session).domains()
    if not blocked:
        return []
    rows = await session.execute(
        select(Community.id, Community.host).where(Community.is_local.is_(False))
    )
    return [community_id for community_id, host in rows if host_is_blocked(blocked, host)]


class BrowseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, viewer_id: int, filters: BrowseFilters, after: Position | None, limit: int
    ) -> list[Found]:
        """Up to `limit + 1` listings `viewer_id`'s members may see, in `filters.sort` order."""
        words = terms(filters.q or "")
        sort = filters.sort
        if sort == RELEVANCE and not words:
            sort = NEWEST
        if sort == DISTANCE and filters.point is None:
            sort = NEWEST
        blocked = await blocked_community_ids(self.session)
        found: list[Found] = []
        if filters.origin in (None, "local"):
            found += await self._local(viewer_id, filters, words, sort, after, limit)
        if filters.origin in (None, "partner", "public"):
            found += await self._remote(viewer_id, filters, words, sort, blocked, after, limit)
        descending = sort == NEWEST
        found.sort(key=lambda f: (f.sort, f.ap_id), reverse=descending)
        return found[: limit + 1]

    async def _local(
        self,
        viewer_id: int,
        filters: BrowseFilters,
        words: list[str],
        sort: str,
        after: Position | None,
        limit: int,
    ) -> list[Found]:
        home = aliased(Community)
        shown = or_(
            Listing.community_id == viewer_id,
            Listing.is_public.is_(True),
            and_(
                Listing.visibility == Visibility.PARTNERS,
                Listing.community_id.in_(partnered_ids(viewer_id)),
            ),
        )
        conditions: list[ColumnElement[bool]] = [shown, Listing.status == ListingStatus.ACTIVE]
        conditions += _common(Listing, home, filters)
        located = _located(Listing, home)
        match = self._match(Listing, "local", words, sort, Listing.created_at)
        key = _key(self.session, sort, match, filters, Listing.created_at, located)
        conditions.append(within(self.session, *_point(filters), located))
        query = select(Listing, key.label("sort_key")).join(home, home.id == Listing.community_id)
        query = _with_match(query, match, Listing.id).where(*conditions)
        page = page_after(query, key, Listing.ap_id, after, limit, descending=sort == NEWEST)
        rows = await self.session.execute(page)
        return [Found(row, _sort_value(value)) for row, value in rows.all()]

    async def _remote(
        self,
        viewer_id: int,
        filters: BrowseFilters,
        words: list[str],
        sort: str,
        blocked: Sequence[int],
        after: Position | None,
        limit: int,
    ) -> list[Found]:
        home = aliased(Community)
        public = RemoteListing.audience == Audience.PUBLIC
        partner = and_(
            RemoteListing.audience == Audience.PARTNERS,
            RemoteListing.origin_community_id.in_(partnered_ids(viewer_id)),
        )
        shown = {None: or_(public, partner), "public": public, "partner": partner}
        conditions: list[ColumnElement[bool]] = [
            shown[filters.origin],
            RemoteListing.is_tombstoned.is_(False),
            RemoteListing.status == ListingStatus.ACTIVE,
        ]
        if blocked:
            conditions.append(RemoteListing.origin_community_id.not_in(blocked))
        conditions += _common(RemoteListing, home, filters)
        shown_at = func.coalesce(RemoteListing.published_at, RemoteListing.received_at)
        located = _located(RemoteListing, home)
        match = self._match(RemoteListing, "remote", words, sort, shown_at)
        key = _key(self.session, sort, match, filters, shown_at, located)
        conditions.append(within(self.session, *_point(filters), located))
        query = select(RemoteListing, key.label("sort_key")).join(
            home, home.id == RemoteListing.origin_community_id
        )
        query = _with_match(query, match, RemoteListing.id).where(*conditions)
        page = page_after(query, key, RemoteListing.ap_id, after, limit, descending=sort == NEWEST)
        rows = await self.session.execute(page)
        return [Found(row, _sort_value(value)) for row, value in rows.all()]

    def _match(
        self, model: Any, source: str, words: list[str], sort: str, newest: Column
    ) -> TextMatch | None:
        if not words:
            return None
        return text_match(
            self.session, model.__table__, source, words, ranked=sort == RELEVANCE, newest=newest
        )


def _with_match(query: Select[*_Ts], match: TextMatch | None, id_column: Any) -> Select[*_Ts]:
    if match is None:
        return query
    if match.candidates is not None:
        query = query.join(match.candidates, match.candidates.c.ref == id_column)
    return query.where(match.condition)


def _key(
    session: AsyncSession,
    sort: str,
    match: TextMatch | None,
    filters: BrowseFilters,
    newest: Column,
    located: list[Located],
) -> Column:
    """What the rows are ordered (and paged) by."""
    if sort == RELEVANCE and match is not None and match.rank is not None:
        return match.rank
    if sort == DISTANCE and filters.point is not None:
        (own_lat, own_lon, _), (home_lat, home_lon, _) = located
        lat = func.coalesce(own_lat, home_lat)
        lon = func.coalesce(own_lon, home_lon)
        distance = distance_km(session, filters.point, lat, lon)
        return func.coalesce(distance, literal(NO_DISTANCE_KM))
    return newest


def _common(model: Any, home: Any, filters: BrowseFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.kind:
        conditions.append(model.kind == filters.kind)
    if filters.category:
        conditions.append(model.category == filters.category)
    if filters.community_slug is not None:
        conditions.append(home.slug == filters.community_slug)
        conditions.append(home.host == filters.community_host)
    return conditions


def _located(model: Any, home: Any) -> list[Located]:
    """A listing's own place when it has one, else its community's."""
    return [
        (model.latitude, model.longitude, model.latitude.is_not(None)),
        (home.latitude, home.longitude, and_(model.latitude.is_(None), home.latitude.is_not(None))),
    ]


def _point(filters: BrowseFilters) -> tuple[Point, float | None]:
    if filters.point is None:
        return Point(0.0, 0.0), None
    return filters.point, filters.radius_km


def _sort_value(value: Any) -> datetime | float:
    return value if isinstance(value, datetime) else float(value)


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
