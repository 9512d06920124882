"""Queries behind browsing the network: our listings and the mirror, a page at a time.

A page draws on three sources: our own listings, partners' listings in the
mirror, and public ones in the mirror. Each gives at most `limit + 1` rows
after the cursor, in the page's order, read from an index in that order and
stopped there (never an `ORDER BY` over the whole table); merged in Python
by the same key and cut to `limit`, they are exactly the next page. What a
community may see is decided in SQL, before the limit, so a page is never
short because something was hidden afterwards.

Rows come back as plain columns, not ORM entities: at 100k listings, building
entities for a page cost more than the SQL that found them. Each row carries
its community and whether it has photos (read afterwards only for the rows
that do), and only the rows that make the page become listing values.

Newest first and each circle of nearest first are one statement for every
source (a UNION ALL of their walks), made once per shape of request with
every value a named parameter: building the statement and SQLAlchemy
matching it to its compiled form cost more than running it.

Nearest first reads widening circles: every row within a radius (bounding box
on the location index, or the listing's community within it), sorted in
Python; when the circle holds a page, it holds the nearest page, else it
grows. Text is the one dialect-specific part (`storage.search`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Community,
    CommunityPartnership,
    Listing,
    ListingImage,
    Member,
    RemoteListing,
)
from storage.paging import Position
from storage.repositories.block_cache import blocked_community_ids
from storage.search import (
    NO_DISTANCE_KM,
    Box,
    Point,
    box_condition,
    box_of,
    distance_from,
    haversine_km,
    newest_matches,
    ranked_matches,
    terms,
    text_condition,
)
from storage.states import Audience, ListingStatus, Origin, PartnershipState, Visibility

NEWEST, DISTANCE, RELEVANCE = "newest", "distance", "relevance"
WALK_ORDER: dict[str, int] = {Origin.PUBLIC: 0, Origin.PARTNER: 1, Origin.LOCAL: 2}
"""Which source a text search walks first: the one likely to hold the most rows."""
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
    shape: tuple[Any, ...] | None = ()
    """What the SQL of `conditions` depends on; their values are named parameters
    (`params`), so that a statement made once for a shape serves every request.
    None when a condition carries its own values (not to be reused)."""
    params: dict[str, Any] = field(default_factory=dict)

    def with_condition(self, condition: ColumnElement[bool]) -> Source:
        """This source with one more condition, made for this request only."""
        return replace(self, conditions=(*self.conditions, condition), shape=None)

    def columns(self) -> list[Any]:
        """The same columns, named and typed alike, for both tables (so that several
        sources can be read in one UNION ALL), with the listing's community and
        whether it has photos, so that a page needs no query for either."""
        m = self.model
        local = m is Listing
        owner = ListingImage.listing_id if local else ListingImage.remote_listing_id
        return [
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
            *(
                (m.visibility, m.location_precision, Member.display_name, Member.username)
                if local
                else _nulls(LOCAL_ONLY)
            ),
            *(_nulls(REMOTE_ONLY) if local else (m.audience, m.remote_updated_at, m.author_name)),
            Community.ap_id.label("home_ap_id"),
            Community.slug.label("home_slug"),
            Community.host.label("home_host"),
            Community.name.label("home_name"),
            Community.latitude.label("home_latitude"),
            Community.longitude.label("home_longitude"),
            select(ListingImage.id).where(owner == m.id).exists().label("has_images"),
        ]

    def select_from(self, query: Select[Any], lead: Any = None) -> Select[Any]:
        """FROM the source's table (joined onto `lead` when given), with what it needs."""
        joined = self.model if lead is None else lead
        query = query.select_from(joined).join(Community, Community.id == self.home)
        if self.model is Listing:
            return query.outerjoin(Member, Member.id == Listing.author_id)
        return query


LOCAL_ONLY = (Listing.visibility, Listing.location_precision, Member.display_name, Member.username)
REMOTE_ONLY = (RemoteListing.audience, RemoteListing.remote_updated_at, RemoteListing.author_name)
HOME = ("home_ap_id", "home_slug", "home_host", "home_name", "home_latitude", "home_longitude")


def _nulls(columns: Sequence[Any]) -> list[Any]:
    """NULLs standing for another table's columns, typed as those are."""
    return [cast(null(), column.type).label(column.key) for column in columns]


_DROPPED = frozenset({"search_key", "score", "walk"})
_LOCAL_DROPPED = _DROPPED | {column.key for column in REMOTE_ONLY} | set(HOME)
_REMOTE_DROPPED = _DROPPED | {column.key for column in LOCAL_ONLY} | set(HOME)


def _row(source: Source, values: Any) -> dict[str, Any]:
    """A result row as the plain values a listing view is made of (its community
    under "home", an object of its own)."""
    names = values._fields
    local = source.model is Listing
    dropped = _LOCAL_DROPPED if local else _REMOTE_DROPPED
    row = {name: value for name, value in zip(names, values, strict=True) if name not in dropped}
    every = values._mapping
    row["home"] = Home(row["home_id"], *(every[name] for name in HOME))
    if local:
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


_PARTNERED = select(CommunityPartnership.remote_community_id).where(
    CommunityPartnership.local_community_id == bindparam("community_id"),
    CommunityPartnership.state == PartnershipState.ACTIVE,
)


async def partnered_ids(session: AsyncSession, community_id: int) -> list[int]:
    """The viewer's active partners, read on every page (never cached: a partnership
    that ends must hide its listings from the next page on)."""
    rows = await session.scalars(_PARTNERED, {"community_id": community_id})
    return list(rows.all())


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
    params: dict[str, Any] = {}
    if blocked:
        shared.append(RemoteListing.origin_community_id.not_in(_expanding("blocked", blocked)))
        params["blocked"] = blocked
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
                        RemoteListing.origin_community_id.in_(_expanding("partnered", partnered)),
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
            ("mirror", origin, status, bool(blocked)),
            {**params, "partnered": partnered} if origin == Origin.PARTNER else params,
        )
        for origin, audience in audiences
        for status in statuses
    ]


def local_source(viewer_id: int, partnered: list[int]) -> Source:
    shown: list[ColumnElement[bool]] = [
        Listing.community_id == bindparam("viewer", viewer_id),
        Listing.is_public.is_(True),
    ]
    params: dict[str, Any] = {"viewer": viewer_id}
    if partnered:
        partners_only = Listing.visibility == Visibility.PARTNERS
        shown.append(
            and_(partners_only, Listing.community_id.in_(_expanding("partnered", partnered)))
        )
        params["partnered"] = partnered
    return Source(
        Origin.LOCAL,
        Listing,
        "local",
        Listing.created_at,
        Listing.community_id,
        (or_(*shown), Listing.status == ListingStatus.ACTIVE),
        ("local", bool(partnered)),
        params,
    )


def own_source(community_id: int, status: str | None, author_id: int | None) -> Source:
    """A local community's own listings, as its members list them: every visibility."""
    conditions = [Listing.community_id == bindparam("own", community_id)]
    params: dict[str, Any] = {"own": community_id}
    if status:
        conditions.append(Listing.status == bindparam("own_status", status))
        params["own_status"] = status
    if author_id is not None:
        conditions.append(Listing.author_id == bindparam("own_author", author_id))
        params["own_author"] = author_id
    return Source(
        Origin.LOCAL,
        Listing,
        "local",
        Listing.created_at,
        Listing.community_id,
        tuple(conditions),
        ("own", bool(status), author_id is not None),
        params,
    )


def _expanding(name: str, values: list[Any]) -> Any:
    """A named parameter that stands for a list (`IN (...)`)."""
    return bindparam(name, values, expanding=True)


_STATEMENTS: dict[tuple[Any, ...], Any] = {}
"""Statements already made, by shape (see `newest`)."""
MAX_STATEMENTS = 512
"""Shapes are few (sources, which filters, a cursor or not); this bounds them anyway."""


async def newest(
    session: AsyncSession,
    sources: Sequence[Source],
    extra: Sequence[Any],
    position: Position | None,
    limit: int,
) -> list[Found]:
    """Newest first across `sources`, no text: one index walk each, all in one
    statement, merged.

    The statement depends only on the shape of the request (which sources,
    which filters, a cursor or not); every value in it (the viewer, the
    partners, a category, a place, the cursor, the limit) is a named
    parameter. So it is made once per shape and reused, which spares
    building it and SQLAlchemy matching a new statement to its compiled
    form on every page, together costlier than the SQL itself.
    """
    shape = _newest_shape(session, sources, extra, position)
    statement = _STATEMENTS.get(shape) if shape is not None else None
    if statement is None:
        statement = _newest_statement(session, sources, extra, position)
        if shape is not None and len(_STATEMENTS) < MAX_STATEMENTS:
            _STATEMENTS[shape] = statement
    params: dict[str, Any] = {"limit": limit + 1, **filter_params(extra)}
    for source in sources:
        params.update(source.params)
    if position is not None:
        params.update(after_sort=position.sort, after_id=position.id)
    read = await read_walks(session, sources, statement, params)
    read.sort(key=lambda pair: (pair[1].shown_at, pair[1].ap_id), reverse=True)
    rows = [_row(source, values) for source, values in read[: limit + 1]]
    return await _found(session, rows, lambda r: r["shown_at"])


def _newest_shape(
    session: AsyncSession, sources: Sequence[Source], extra: Sequence[Any], position: Any
) -> tuple[Any, ...] | None:
    """What `_newest_statement` depends on, or None when a filter is a ready-made
    condition (its values are in it: not to be reused for another request)."""
    if any(name == "where" for name, _ in extra) or any(s.shape is None for s in sources):
        return None
    return (
        session.get_bind().dialect.name,
        tuple(source.shape for source in sources),
        tuple(filter_shape(name, value) for name, value in extra),
        position is not None,
    )


def _newest_statement(
    session: AsyncSession, sources: Sequence[Source], extra: Sequence[Any], position: Any
) -> Any:
    walks = []
    for source in sources:
        query = source.select_from(select(*source.columns())).where(
            *source.conditions, *bind(session, source, extra)
        )
        if position is not None:
            model = source.model
            sort: Any = bindparam("after_sort", position.sort, type_=source.time.type)
            last: Any = bindparam("after_id", position.id, type_=model.ap_id.type)
            query = query.where(source.time <= sort, or_(source.time < sort, model.ap_id < last))
        walks.append(
            query.order_by(source.time.desc(), source.model.ap_id.desc()).limit(
                bindparam("limit", type_=Integer)
            )
        )
    return _union(walks)


def _union(walks: Sequence[Select[Any]]) -> Any:
    """One statement for several sources' queries (see `read_walks`)."""
    if len(walks) == 1:
        return walks[0]
    return union_all(
        *(
            select(literal_column(str(i)).label("walk"), walk.subquery(f"walk_{i}"))
            for i, walk in enumerate(walks)
        )
    )


def _circle_params(box: Box, near: list[int]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "circle_s": box.south,
        "circle_n": box.north,
        "circle_w": box.west,
        "circle_e": box.east,
    }
    if near:
        values["circle_near"] = near
    return values


async def read_walks(
    session: AsyncSession, sources: Sequence[Source], statement: Any, params: dict[str, Any]
) -> list[tuple[Source, Any]]:
    """The rows of `_newest_statement`: one source's walk, or a UNION ALL of them
    (each kept whole, its own order and limit, as a subquery) whose rows say which
    walk they came from; each with its source. One round trip either way. Rows
    stay as read (`_row` makes them a page's values) until the page is chosen:
    most are not on it."""
    if not sources:
        return []
    result = (await session.execute(statement, params)).all()
    if len(sources) == 1:
        return [(sources[0], r) for r in result]
    return [(sources[int(r.walk)], r) for r in result]


async def _found(session: AsyncSession, rows: list[dict[str, Any]], key: Any) -> list[Found]:
    await _with_images(session, rows)
    return [Found(r, r.pop("home"), key(r)) for r in rows]


async def _with_images(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Each row's photos (`row["images"]`, in order), read at once for the rows that
    have any (most have none: then there is nothing to read)."""
    pictured = [r for r in rows if r.pop("has_images")]
    local = [r["id"] for r in pictured if r["origin"] == Origin.LOCAL]
    remote = [r["id"] for r in pictured if r["origin"] != Origin.LOCAL]
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
            return await self._newest_matches(sources, extra, words, position, limit)
        return await newest(self.session, sources, extra, position, limit)

    async def _newest_matches(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        position: Position | None,
        limit: int,
    ) -> list[Found]:
        """Newest first with words: one walk of the matches per source, the largest
        source first. Once a page is in hand, nothing older than its last row can be
        on it, so later sources walk only back to that time: a source with few
        matches (our own listings, among a mirror of thousands) is not walked to its
        end for a common word."""
        found: list[dict[str, Any]] = []
        since: datetime | None = None
        for source in sorted(sources, key=lambda s: WALK_ORDER[s.origin]):
            where = [*source.conditions, *bind(self.session, source, extra)]
            matched = await newest_matches(
                self.session, source, words, where, position, limit, since=since
            )
            found += [_row(source, r) for r in matched]
            found.sort(key=lambda r: (r["shown_at"], r["ap_id"]), reverse=True)
            del found[limit + 1 :]
            if len(found) > limit:
                since = found[-1]["shown_at"]
        return await _found(self.session, found, lambda r: r["shown_at"])

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
        box = box_of(point, radius_km)
        bounds = {"box_s": box.south, "box_n": box.north, "box_w": box.west, "box_e": box.east}
        rows = await self.session.execute(_near_statement(box), bounds)
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
        rows.sort(key=lambda found: (found[2], found[1].ap_id))
        page = [(_row(source, values), d) for source, values, d in rows[: limit + 1]]
        distances = {id(row): d for row, d in page}
        return await _found(self.session, [row for row, _ in page], lambda r: distances[id(r)])

    async def _circle(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        point: Point,
        radius: float,
        position: Position | None,
    ) -> list[tuple[Source, Any, float]]:
        """Every visible row within `radius` of `point` after `position`, with its distance.

        One statement for every source, made once per shape (as in `newest`) unless
        words make it this request's own."""
        near = await self._near_communities(point, radius)
        box = box_of(point, radius)
        shape = _newest_shape(self.session, sources, extra, None)
        if shape is not None and not words:
            shape = ("circle", *shape, box.west is None, box.wraps, bool(near))
            statement = _STATEMENTS.get(shape)
        else:
            shape, statement = None, None
        if statement is None:
            statement = self._circle_statement(sources, extra, words, box, list(near))
            if shape is not None and len(_STATEMENTS) < MAX_STATEMENTS:
                _STATEMENTS[shape] = statement
        params: dict[str, Any] = {**filter_params(extra), **_circle_params(box, list(near))}
        for source in sources:
            params.update(source.params)
        out: list[tuple[Source, Any, float]] = []
        for source, row in await read_walks(self.session, sources, statement, params):
            if row.latitude is not None:
                d = haversine_km(point, Point(row.latitude, row.longitude))
            else:
                d = near[row.home_id]
            if d <= radius and _after_ascending(d, row.ap_id, position):
                out.append((source, row, d))
        return out

    def _circle_statement(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        box: Box,
        near: list[int],
    ) -> Any:
        values = _circle_params(box, near)
        bounds = [
            bindparam(name, values[name], type_=Float)
            for name in ("circle_s", "circle_n", "circle_w", "circle_e")
        ]
        walks = []
        for source in sources:
            m = source.model
            located: ColumnElement[bool] = and_(
                m.latitude.is_not(None), box_condition(box, m.latitude, m.longitude, bounds)
            )
            if near:
                homes = source.home.in_(_expanding("circle_near", near))
                located = or_(located, and_(_unplaced(m), homes))
            query = source.select_from(select(*source.columns())).where(
                *source.conditions, *bind(self.session, source, extra), located
            )
            if words:
                query = query.where(text_condition(self.session, source, words))
            walks.append(query)
        return _union(walks)

    async def _unlocated(
        self,
        sources: Sequence[Source],
        extra: Sequence[Any],
        words: list[str],
        position: Position | None,
        limit: int,
    ) -> list[tuple[Source, Any, float]]:
        """Rows with no place of their own nor their community's: last, by id."""
        located_homes = select(Community.id).where(Community.latitude.is_not(None))
        out: list[tuple[Source, Any, float]] = []
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
            out += [(source, r, NO_DISTANCE_KM) for r in await self.session.execute(query)]
        return out


_NEAR: dict[tuple[bool, bool], Any] = {}


def _near_statement(box: Box) -> Any:
    """Communities in a box like `box`, its bounds named parameters: made once per shape."""
    shape = (box.west is None, box.wraps)
    statement = _NEAR.get(shape)
    if statement is None:
        lat, lon = Community.latitude, Community.longitude
        bounds = [bindparam(name, type_=Float) for name in ("box_s", "box_n", "box_w", "box_e")]
        statement = select(Community.id, lat, lon).where(
            lat.is_not(None), lon.is_not(None), box_condition(box, lat, lon, bounds)
        )
        _NEAR[shape] = statement
    return statement


def _unplaced(model: Any) -> ColumnElement[bool]:
    """No place of its own, written so that no index on latitude serves it: the planner
    should find these rows by their community (most rows have no place of their own)."""
    unplaced: ColumnElement[bool] = (model.latitude + 0).is_(None)
    return unplaced


WALK_TIME_INDEX_KM = 25.0
"""From this radius up, the place is checked on rows read newest first from the time
index (a radius that wide holds a page soon), written so that no location index serves
it and no planner takes it for a rare condition: both would otherwise read every row in
the box and sort them all."""


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
    """The shared filters as conditions on `source`'s table, their values as named
    parameters (`filter_params`)."""
    m = source.model
    out: list[ColumnElement[bool]] = []
    for name, value in generic:
        if name == "kind":
            out.append(m.kind == bindparam("kind", value))
        elif name == "category":
            out.append(m.category == bindparam("category", value))
        elif name == "home_in":
            out.append(source.home.in_(_expanding("home_in", value)))
        elif name == "where":  # a condition already made for this table (text search)
            out.append(value)
        elif name == "within":
            out.append(_within(session, source, *value))
    return out


def _within(
    session: AsyncSession, source: Source, point: Point, radius: float, near: list[int]
) -> ColumnElement[bool]:
    m = source.model
    values = _within_params(point, radius, near)
    bounds = [
        bindparam(name, values.get(name), type_=Float)
        for name in ("box_s", "box_n", "box_w", "box_e")
    ]
    centre = [bindparam(name, values[name], type_=Float) for name in ("lat", "lon", "cos_lat")]
    lat = m.latitude + 0 if radius >= WALK_TIME_INDEX_KM else m.latitude
    own = and_(
        m.latitude.is_not(None),
        box_condition(box_of(point, radius), lat, m.longitude, bounds),
        distance_from(session, centre, m.latitude, m.longitude)
        <= bindparam("radius", radius, type_=Float),
    )
    condition = own
    if near:
        condition = or_(own, and_(_unplaced(m), source.home.in_(_expanding("near", near))))
    if radius >= WALK_TIME_INDEX_KM:
        # Opaque to the planners (NULL is no match either way): PostgreSQL otherwise takes
        # the box for a few rows and reads and sorts every row in it.
        return func.coalesce(condition, false())
    return condition


def _within_params(point: Point, radius: float, near: list[int]) -> dict[str, Any]:
    box = box_of(point, radius)
    values: dict[str, Any] = {
        "box_s": box.south,
        "box_n": box.north,
        "lat": point.lat,
        "lon": point.lon,
        "cos_lat": math.cos(math.radians(point.lat)),
        "radius": radius,
    }
    if box.west is not None:
        values.update(box_w=box.west, box_e=box.east)
    if near:
        values["near"] = near
    return values


def filter_shape(name: str, value: Any) -> tuple[Any, ...]:
    """What the SQL of one of `bind`'s filters depends on (not its values)."""
    if name != "within":
        return (name,)
    point, radius, near = value
    box = box_of(point, radius)
    return (name, radius >= WALK_TIME_INDEX_KM, box.west is None, box.wraps, bool(near))


def filter_params(generic: Sequence[Any]) -> dict[str, Any]:
    """The values of `bind`'s parameters for these filters."""
    params: dict[str, Any] = {}
    for name, value in generic:
        if name == "within":
            params.update(_within_params(*value))
        elif name != "where":
            params[name] = value
    return params
