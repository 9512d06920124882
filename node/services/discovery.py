"""Network discovery for members: the community directory and browsing across the network.

Both read only what this node has cached (never a remote request while a
member waits); what is cached is learned and refreshed by jobs
(`node.protocol.crawl`). Who may see what is decided in the queries
(`storage.repositories.discovery`), before paging: a community-only listing
of another community and a partner listing of a non-partner are never
selected, and neither is anything from a blocked domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.listings import CommunityRef, ListingView, Place, view_of_row
from node.errors import BadRequest, ValidationFailed
from storage.models import Community
from storage.paging import Position
from storage.repositories import ListingRepository
from storage.repositories.browse import Home
from storage.repositories.discovery import (
    DISTANCE,
    NEWEST,
    RELEVANCE,
    BrowseFilters,
    BrowseRepository,
    DirectoryFilters,
    DirectoryRepository,
    Found,
)
from storage.search import Point, haversine_km
from storage.states import Kind, Origin

SORTS = (NEWEST, DISTANCE, RELEVANCE)


@dataclass(frozen=True)
class BrowseQuery:
    """What a member asks to browse. `after` is the decoded cursor of the previous page."""

    q: str | None = None
    kind: Kind | None = None
    category: str | None = None
    community: str | None = None  # handle, slug@host
    origin: Origin | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    sort: str = NEWEST
    limit: int = 50
    after: Position | None = None


@dataclass(frozen=True)
class BrowseItem:
    listing: ListingView
    distance_km: float | None


@dataclass(frozen=True)
class CommunityQuery:
    q: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    limit: int = 50
    after: Position | None = None


@dataclass(frozen=True)
class CommunityCard:
    """A community as the directory shows it."""

    id: str
    handle: str
    name: str
    description: str
    location: Place | None
    public_offer_count: int
    public_need_count: int
    distance_km: float | None
    partnership: str | None
    is_local: bool


def _point(lat: float | None, lon: float | None, radius_km: float | None) -> Point | None:
    """The point asked about; half of one, or a radius without one, is a 422."""
    if (lat is None) != (lon is None):
        raise ValidationFailed("give both lat and lon, or neither")
    if lat is None or lon is None:
        if radius_km is not None:
            raise ValidationFailed("radius_km needs lat and lon")
        return None
    return Point(lat, lon)


def _check_cursor(after: Position | None, sort: str) -> None:
    """A cursor from a list sorted another way would compare a time with a distance."""
    if after is None:
        return
    by_time = isinstance(after.sort, datetime)
    numeric = isinstance(after.sort, int | float) and not isinstance(after.sort, bool)
    if (sort == NEWEST and not by_time) or (sort != NEWEST and not numeric):
        raise BadRequest("cursor is not one this server gave out for this sort")
    if not isinstance(after.id, str):
        raise BadRequest("cursor is not one this server gave out")


def _handle(handle: str | None) -> tuple[str | None, str | None]:
    if handle is None:
        return None, None
    slug, separator, host = handle.strip().removeprefix("@").rpartition("@")
    if not separator or not slug or not host:
        raise ValidationFailed("community must be a handle, slug@host")
    return slug, host.lower()


def effective_sort(query: BrowseQuery) -> str:
    """Relevance needs words and distance a point; otherwise the list is newest first."""
    if query.sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}")
    if query.sort == RELEVANCE and not (query.q and query.q.strip()):
        return NEWEST
    if query.sort == DISTANCE and query.lat is None:
        return NEWEST
    return query.sort


async def browse_listings(
    session: AsyncSession, viewer_community: Community, query: BrowseQuery
) -> tuple[list[BrowseItem], Position | None]:
    """Listings the viewer's community may see, across the network, one page at a time."""
    point = _point(query.lat, query.lon, query.radius_km)
    sort = effective_sort(query)
    _check_cursor(query.after, sort)
    slug, host = _handle(query.community)
    filters = BrowseFilters(
        q=query.q,
        kind=query.kind,
        category=query.category,
        community_slug=slug,
        community_host=host,
        origin=query.origin,
        point=point,
        radius_km=query.radius_km,
        sort=sort,
    )
    found = await BrowseRepository(session).page(
        viewer_community.id, filters, query.after, query.limit
    )
    page = found[: query.limit]
    items = [_item(f, point, viewer_community.id) for f in page]
    more = len(found) > query.limit
    return items, Position(page[-1].sort, page[-1].ap_id) if more and page else None


def _item(found: Found, point: Point | None, viewer_id: int) -> BrowseItem:
    home = found.home
    community = CommunityRef(id=home.ap_id, handle=home.handle, name=home.name)
    view = view_of_row(found.row, community, viewer_id)
    return BrowseItem(view, _distance(point, view.location, home))


def _distance(point: Point | None, own: Place | None, home: Home) -> float | None:
    if point is None:
        return None
    if own is not None:
        return round(haversine_km(point, Point(own.lat, own.lon)), 3)
    if home.latitude is not None and home.longitude is not None:
        return round(haversine_km(point, Point(home.latitude, home.longitude)), 3)
    return None


async def list_communities(
    session: AsyncSession, viewer_community: Community, query: CommunityQuery
) -> tuple[list[CommunityCard], Position | None]:
    """Every community this node knows and may list: its own, its peers', partners',
    and those seen in activities; nearest first when a point is given, else by name."""
    point = _point(query.lat, query.lon, query.radius_km)
    if query.after is not None:
        by_distance = point is not None
        numeric = isinstance(query.after.sort, int | float)
        if by_distance != numeric or (not by_distance and not isinstance(query.after.sort, str)):
            raise BadRequest("cursor is not one this server gave out for these filters")
    repo = DirectoryRepository(session)
    text = (query.q or "").strip() or None
    filters = DirectoryFilters(q=text, point=point, radius_km=query.radius_km)
    entries = await repo.page(viewer_community.id, filters, query.after, query.limit)
    page = entries[: query.limit]
    states = await repo.partnership_states(viewer_community.id, [e.community.id for e in page])
    cards = [await _card(session, e.community, point, states.get(e.community.id)) for e in page]
    more = len(entries) > query.limit
    last = page[-1] if page else None
    return cards, Position(last.sort, last.community.ap_id) if more and last else None


async def _card(
    session: AsyncSession, community: Community, point: Point | None, partnership: str | None
) -> CommunityCard:
    location = (
        Place(community.latitude, community.longitude)
        if community.latitude is not None and community.longitude is not None
        else None
    )
    if community.is_local:
        offers, needs = await public_listing_counts(session, community)
    else:
        offers, needs = community.public_offer_count, community.public_need_count
    distance = (
        round(haversine_km(point, Point(location.lat, location.lon)), 3)
        if point is not None and location is not None
        else None
    )
    return CommunityCard(
        id=community.ap_id,
        handle=community.handle,
        name=community.name,
        description=community.description,
        location=location,
        public_offer_count=offers,
        public_need_count=needs,
        distance_km=distance,
        partnership=partnership,
        is_local=community.is_local,
    )


async def public_listing_counts(session: AsyncSession, community: Community) -> tuple[int, int]:
    """Active public offers and needs of one of our communities; nothing else is counted."""
    repo = ListingRepository(session)
    return (
        await repo.count_public(community.id, Kind.OFFER),
        await repo.count_public(community.id, Kind.NEED),
    )
