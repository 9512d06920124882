"""Queries behind browsing the network: our listings and the mirror, a page at a time.

A page draws on three sources: our own listings, partners' listings in the
mirror, and public ones in the mirror. Each gives at most `limit + 1` rows
after the cursor, in the page's order, read from an index in that order and
stopped there (never an `ORDER BY` over the whole table); merged in Python
by the same key and cut to `limit`, they are exactly the next page. What a
community may see is decided in SQL, before the limit, so a page is never
short because something was hidden afterwards.

Rows come back as plain columns, not ORM entities: at 100k listings, building
entities for a page cost more than the SQL that found them. The communities
a page shows are read in one query afterwards, by id.

Nearest first reads widening circles: every row within a radius (bounding box
on the location index, or the listing's community within it), sorted in
Python; when the circle holds a page, it holds the nearest page, else it
grows. Text is the one dialect-specific part (`storage.search`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Community,
    CommunityPartnership,
    Listing,
    ListingImage,
    Member,
    RemoteListing,
)
from storage.paging import Position, after
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.search import (
    NO_DISTANCE_KM,
    Point,
    bounding_box,
    distance_km,
    haversine_km,
    newest_matches,
    ranked_matches,
    terms,
    text_condition,
)
from storage.states import Audience, ListingStatus, Origin, PartnershipState, Visibility

NEWEST, DISTANCE, RELEVANCE = "newest", "distance", "relevance"
WHOLE_EARTH_KM = 20_100.0
"""Farther than any two points on Earth: a circle this wide holds every located row."""


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
class Home:
    """The community a listing belongs to, as a page shows it."""

    id: int
    ap_id: str
    slug: str
    host: str
    name: str
    latitude: float | None
    longitude: float | None

    @property
    def handle(self) -> str:
        return f"{self.slug}@{self.host}"


@dataclass(frozen=True)
class Found:
    """One listing as plain values (see `_row`), its community, and its sort value."""

    row: dict[str, Any]
    home: Home
    sort: datetime | float

    @property
    def ap_id(self) -> str:
        return str(self.row["ap_id"])


@dataclass(frozen=True)
class Source:
    """One place listings come from, and the columns a page needs of it."""

    origin: str
    model: Any
    search_key: str  # what SQLite's search index calls this table
    time: Any
    home: Any
    conditions: tuple[ColumnElement[bool], ...]

    def columns(self) -> list[Any]:
        m = self.model
        common = [
            m.id,
            m.ap_id,
            m.kind,
            m.title,
            m.description,
            m.category,
            m.status,
            m.latitude,
            m.longitude,
            self.home.label("home_id"),
            self.time.label("shown_at"),
            m.updated_at,
        ]
        if m is Listing:
            return [
                *common,
                m.visibility,
                m.location_precision,
                Member.display_name,
                Member.username,
            ]
        return [*common, m.audience, m.remote_updated_at, m.author_name]

    def select_from(self, query: Select[Any], lead: Any = None) -> Select[Any]:
        """FROM the source's table (joined onto `lead` when given), with what it needs."""
        joined = self.model if lead is None else lead
        if self.model is Listing:
            return query.select_from(joined).outerjoin(Member, Member.id == Listing.author_id)
        return query.select_from(joined)


def _row(source: Source, values: Any) -> dict[str, Any]:
    """A result row as the plain values a listing view is made of."""
    row = dict(values._mapping)
    row.pop("search_key", None)
    row.pop("score", None)
    if source.model is Listing:
        display, username = row.pop("display_name"), row.pop("username")
        row["author_name"] = (display or username) if username is not None else None
        row["origin"] = Origin.LOCAL
    else:
        public = row.pop("audience") == Audience.PUBLIC
        row["visibility"] = Visibility.PUBLIC if public else Visibility.PARTNERS
        row["origin"] = Origin.PUBLIC if public else Origin.PARTNER
        row["updated_at"] = row.pop("remote_updated_at") or row["updated_at"]
        row["author_name"] = row["author_name"] or None
    return row


async def partnered_ids(session: AsyncSession, community_id: int) -> list[int]:
    rows = await session.scalars(
        select(CommunityPartnership.remote_community_id).where(
            CommunityPartnership.local_community_id == community_id,
            CommunityPartnership.state == PartnershipState.ACTIVE,
        )
    )
    return list(rows.all())


async def blocked_community_ids(session: AsyncSession) -> list[int]:
    """Communities on a blocked host; the block list is usually empty, then this is free."""
    blocked = await BlockRepository(session).domains()
    if not blocked:
        return []
    rows = await session.execute(
        select(Community.id, Community.host).where(Community.is_local.is_(False))
    )
    return [community_id for community_id, host in rows if host_is_blocked(blocked, host)]


async def mirror_sources(
    session: AsyncSession,
    viewer_id: int,
    *,
    public: bool,
    partners: bool,
    statuses: Sequence[str] = (ListingStatus.ACTIVE,),
    partnered: list[int] | None = None,
) -> list[Source]:
    """The mirror as sources a viewer may read: one per audience and status, so that each
    is served in time order by the (audience, status, shown_at) index."""
    blocked = await blocked_community_ids(session)
    shared: list[ColumnElement[bool]] = [RemoteListing.is_tombstoned.is_(False)]
    if blocked:
        shared.append(RemoteListing.origin_community_id.not_in(blocked))
    audiences: list[tuple[str, ColumnElement[bool]]] = []
    if public:
        audiences.append((Origin.PUBLIC, RemoteListing.audience == Audience.PUBLIC))
    if partners:
        if partnered is None:
            partnered = await partnered_ids(session, viewer_id)
        if partnered:
            audiences.append(
                (
                    Origin.PARTNER,
                    and_(
                        RemoteListing.audience == Audience.PARTNERS,
                        RemoteListing.origin_community_id.in_(partnered),
                    ),
                )
            )
    return [
        Source(
            origin,
            RemoteListing,
            "remote",
            RemoteListing.shown_at,
            RemoteListing.origin_community_id,
            (audience, RemoteListing.status == status, *shared),
        )
        for origin, audience in audiences
        for status in statuses
    ]


def local_source(viewer_id: int, partnered: list[int]) -> Source:
    shown: list[ColumnElement[bool]] = [
        Listing.community_id == viewer_id,
        Listing.is_public.is_(True),
    ]
    if partnered:
        shown.append(
            and_(Listing.visibility == Visibility.PARTNERS, Listing.community_id.in_(partnered))
        )
    return Source(
        Origin.LOCAL,
        Listing,
        "local",
        Listing.created_at,
        Listing.community_id,
        (or_(*shown), Listing.status == ListingStatus.ACTIVE),
    )


async def homes(session: AsyncSession, ids: Iterable[int]) -> dict[int, Home]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            Community.id,
            Community.ap_id,
            Community.slug,
            Community.host,
            Community.name,
            Community.latitude,
            Community.longitude,
        ).where(Community.id.in_(wanted))
    )
    return {row.id: Home(*row) for row in rows}


async def newest(
    session: AsyncSession,
    sources: Sequence[Source],
    extra: Sequence[Any],
    position: Position | None,
    limit: int,
) -> list[Found]:
    """Newest first across `sources`, no text: one index walk each, merged."""
    rows: list[dict[str, Any]] = []
    for source in sources:
        query = source.select_from(select(*source.columns())).where(
            *source.conditions, *bind(session, source, extra)
        )
        if position is not None:
            query = query.where(after(source.time, source.model.ap_id, position))
        query = query.order_by(source.time.desc(), source.model.ap_id.desc()).limit(limit + 1)
        rows += [_row(source, r) for r in (await session.execute(query)).all()]
    rows.sort(key=lambda r: (r["shown_at"], r["ap_id"]), reverse=True)
    return await _found(session, rows[: limit + 1], lambda r: r["shown_at"])


async def _found(session: AsyncSession, rows: list[dict[str, Any]], key: Any) -> list[Found]:
    found_homes = await homes(session, (r["home_id"] for r in rows))
    await _with_images(session, rows)
    return [Found(r, found_homes[r["home_id"]], key(r)) for r in rows]


async def _with_images(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Each row's photos (`row["images"]`, in order), read for the whole page at once."""
    local = [r["id"] for r in rows if r["origin"] == Origin.LOCAL]
    remote = [r["id"] for r in rows if r["origin"] != Origin.LOCAL]
    by_owner: dict[str, list[ListingImage]] = {}
    if local or remote:
        query = (
            select(ListingImage)
            .where(
                or_(
                    ListingImage.listing_id.in_(local),
                    ListingImage.remote_listing_id.in_(remote),
                )
            )
            .order_by(ListingImage.position, ListingImage.id)
        )
        for image in (await session.scalars(query)).all():
            owner = image.listing_id or image.remote_listing_id
            if owner is not None:
                by_owner.setdefault(owner, []).append(image)
    for row in rows:
        row["images"] = by_owner.get(row["id"], [])


class BrowseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, viewer_id: int, filters: BrowseFilters, position: Position | None, limit: int
    ) -> list[Found]:
        """Up to `limit + 1` listings `viewer_id`'s members may see, in `filters.sort` order."""
        words = terms(filters.q or "")
        sort = filters.sort
        if sort == RELEVANCE and not words:
            sort = NEWEST
        if sort == DISTANCE and filters.point is None:
            sort = NEWEST
        sources = await self._sources(viewer_id, filters.origin)
        extra = await self._filters(filters, sort)
        if extra is None:
            return []
        if sort == DISTANCE:
            assert filters.point is not None
            return await self._nearest(sources, extra, words, filters, position, limit)
        if sort == RELEVANCE:
            rows: list[tuple[dict[str, Any], float]] = []
            for source in sources:
                where = [*source.conditions, *bind(self.session, source, extra)]
                ranked = await ranked_matches(self.session, source, words, where, position, limit)
                rows += [(_row(source, r), float(r.score)) for r in ranked]
            rows.sort(key=lambda pair: (pair[1], pair[0]["ap_id"]))
            scores = {id(r): score for r, score in rows}
            return await _found(
                self.session, [r for r, _ in rows[: limit + 1]], lambda r: scores[id(r)]
            )
        if words:
            found: list[dict[str, Any]] = []
            for source in sources:
                where = [*source.conditions, *bind(self.session, source, extra)]
                matched = await newest_matches(self.session, source, words, where, position, limit)
                found += [_row(source, r) for r in matched]
            found.sort(key=lambda r: (r["shown_at"], r["ap_id"]), reverse=True)
            return await _found(self.session, found[: limit + 1], lambda r: r["shown_at"])
        return await newest(self.session, sources, extra, position, limit)

    async def _sources(self, viewer_id: int, origin: str | None) -> list[Source]:
        sources: list[Source] = []
        partnered = await partnered_ids(self.session, viewer_id)
        if origin in (None, Origin.LOCAL):
            sources.append(local_source(viewer_id, partnered))
        if origin in (None, Origin.PARTNER, Origin.PUBLIC):
            sources += await mirror_sources(
                self.session,
                viewer_id,
                public=origin in (None, Origin.PUBLIC),
                partners=origin in (None, Origin.PARTNER),
                partnered=partnered,
            )
        return sources

    async def _filters(self, filters: BrowseFilters, sort: str) -> list[Any] | None:
        """Conditions every source shares, as generic columns (bound per source by
        `_bind`); None when they can match nothing."""
        conditions: list[Any] = []
        if filters.kind:
            conditions.append(("kind", filters.kind))
        if filters.category:
            conditions.append(("category", filters.category))
        if filters.community_slug is not None:
            ids = await self.session.scalars(
                select(Community.id).where(
                    Community.slug == filters.community_slug,
                    Community.host == filters.community_host,
                )
            )
            wanted = list(ids.all())
            if not wanted:
                return None
            conditions.append(("home_in", wanted))
        if filters.point is not None and filters.radius_km is not None and sort != DISTANCE:
            near = await self._near_communities(filters.point, filters.radius_km)
            conditions.append(("within", (filters.point, filters.radius_km, list(near))))
        return conditions

    async def _near_communities(self, point: Point, radius_km: float) -> dict[int, float]:
        """Communities within `radius_km` of `point`, with their distance."""
        lat, lon = Community.latitude, Community.longitude
        rows = await self.session.execute(
            select(Community.id, lat, lon).where(
                lat.is_not(None), lon.is_not(None), bounding_box(point, radius_km, lat, lon)
            )
        )
        near = {}
        for community_id, c_lat, c_lon in rows:
            if c_lat is None or c_lon is None:
                continue
            d = haversine_km(point, Point(c_lat, c_lon))
            if d <= radius_km:
                near[community_id] = d
        return near

    async def _nearest(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        filters: BrowseFilters,
        position: Position | None,
        limit: int,
    ) -> list[Found]:
        """Nearest first, by widening circles (see the module's docstring)."""
        point = filters.point
        assert point is not None
        limit_km = filters.radius_km if filters.radius_km is not None else WHOLE_EARTH_KM
        start = _number(position) if position is not None else 0.0
        radius = min(limit_km, max(start * 1.5, start + 5.0, limit_km / 8, 1.0))
        while True:
            rows = await self._circle(sources, extra, words, point, radius, position)
            if len(rows) > limit or radius >= limit_km:
                break
            radius = min(limit_km, radius * 3)
        if len(rows) <= limit and filters.radius_km is None:
            rows += await self._unlocated(sources, extra, words, position, limit)
        rows.sort(key=lambda pair: (pair[1], pair[0]["ap_id"]))
        distances = {id(r): d for r, d in rows}
        return await _found(
            self.session, [r for r, _ in rows[: limit + 1]], lambda r: distances[id(r)]
        )

    async def _circle(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        point: Point,
        radius: float,
        position: Position | None,
    ) -> list[tuple[dict[str, Any], float]]:
        """Every visible row within `radius` of `point` after `position`, with its distance."""
        near = await self._near_communities(point, radius)
        out: list[tuple[dict[str, Any], float]] = []
        for source in sources:
            m = source.model
            located: ColumnElement[bool] = and_(
                m.latitude.is_not(None), bounding_box(point, radius, m.latitude, m.longitude)
            )
            if near:
                located = or_(located, and_(_unplaced(m), source.home.in_(list(near))))
            query = source.select_from(select(*source.columns())).where(
                *source.conditions, *bind(self.session, source, extra), located
            )
            if words:
                query = query.where(text_condition(self.session, source, words))
            for values in (await self.session.execute(query)).all():
                row = _row(source, values)
                if row["latitude"] is not None:
                    d = haversine_km(point, Point(row["latitude"], row["longitude"]))
                else:
                    d = near[row["home_id"]]
                if d <= radius and _after_ascending(d, row["ap_id"], position):
                    out.append((row, d))
        return out

    async def _unlocated(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        position: Position | None,
        limit: int,
    ) -> list[tuple[dict[str, Any], float]]:
        """Rows with no place of their own nor their community's: last, by id."""
        located_homes = select(Community.id).where(Community.latitude.is_not(None))
        out: list[tuple[dict[str, Any], float]] = []
        for source in sources:
            m = source.model
            query = source.select_from(select(*source.columns())).where(
                *source.conditions,
                *bind(self.session, source, extra),
                m.latitude.is_(None),
                source.home.not_in(located_homes),
            )
            if words:
                query = query.where(text_condition(self.session, source, words))
            if position is not None and _number(position) >= NO_DISTANCE_KM:
                query = query.where(m.ap_id > position.id)
            query = query.order_by(m.ap_id).limit(limit + 1)
            out += [(_row(source, r), NO_DISTANCE_KM) for r in await self.session.execute(query)]
        return out


def _unplaced(model: Any) -> ColumnElement[bool]:
    """No place of its own, written so that no index on latitude serves it: the planner
    should find these rows by their community (most rows have no place of their own)."""
    unplaced: ColumnElement[bool] = (model.latitude + 0).is_(None)
    return unplaced


WALK_TIME_INDEX_KM = 25.0
"""From this radius up, the place is checked on rows read newest first from the time
index (a radius that wide holds a page soon), written so that no location index serves
it: SQLite's planner would otherwise read every row in the box and sort them all."""


def _number(position: Position) -> float:
    """A distance cursor's value (the service has checked that it is a number)."""
    sort = position.sort
    return float(sort) if isinstance(sort, int | float) else 0.0


def _after_ascending(value: float, ap_id: str, position: Position | None) -> bool:
    if position is None:
        return True
    last = _number(position)
    return value > last or (value == last and ap_id > str(position.id))


def bind(
    session: AsyncSession, source: Source, generic: Sequence[Any]
) -> list[ColumnElement[bool]]:
    """The shared filters as conditions on `source`'s table."""
    m = source.model
    out: list[ColumnElement[bool]] = []
    for name, value in generic:
        if name == "kind":
            out.append(m.kind == value)
        elif name == "category":
            out.append(m.category == value)
        elif name == "home_in":
            out.append(source.home.in_(value))
        elif name == "where":  # a condition already made for this table (text search)
            out.append(value)
        elif name == "within":
            point, radius, near = value
            lat = m.latitude + 0 if radius >= WALK_TIME_INDEX_KM else m.latitude
            own = and_(
                m.latitude.is_not(None),
                bounding_box(point, radius, lat, m.longitude),
                distance_km(session, point, m.latitude, m.longitude) <= radius,
            )
            homes_near = and_(_unplaced(m), source.home.in_(near)) if near else None
            out.append(or_(own, homes_near) if homes_near is not None else own)
    return out
