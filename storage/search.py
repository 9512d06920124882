"""Full-text and distance SQL: the part of browsing that differs between databases.

Text: SQLite uses one FTS5 table over our listings and the mirror
(`listing_search`, rowid linked to a listing through `listing_search_keys`),
PostgreSQL a generated `tsvector` column with a GIN index on each listing
table (migrations 0009 and 0013). Words are matched as prefixes ("drill"
finds "drills"), in any language, without stemming.

Newest first with words never looks at every match of a common word:

- SQLite: a search row's rowid is a sort key (the listing's time in ms times
  `KEY_SLOTS`, plus a counter), so FTS5 walks the matches newest first
  (`ORDER BY rowid DESC`) and stops after a page, whether the word is in one
  listing or half of them. The page's last millisecond is read whole, so
  ties are ordered by id exactly as everywhere else.
- PostgreSQL: the `RECENT_FIRST` newest rows (an index walk) are checked
  first, which holds a page for a common word; when they do not, the word is
  rare enough for the GIN index to find all its matches cheaply.

Relevance ranks a bounded candidate set: the `RELEVANCE_CANDIDATES` newest
matches (same walks as above) are scored (bm25 / ts_rank) and ordered. A word
in half of 100k listings thus costs one short walk and N scorings, not 50k;
a rare word has fewer than N matches and all of them are ranked; for a common
word, an older but better match beyond the newest N is not ranked.

Distance: a bounding box on the indexed latitude/longitude columns picks the
candidates, then the exact great-circle (haversine) distance filters them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    and_,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import is_postgresql
from storage.paging import Column as Expr
from storage.paging import Position, after

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_SLOTS = 1 << 20
"""Search keys per millisecond (SQLite): key = ms since 1970 * KEY_SLOTS + a counter."""
MAX_KEY_MS = (1 << 43) - 1
EARTH_RADIUS_KM = 6371.0088
NO_DISTANCE_KM = 100_000.0
"""Sort key for something with no location: after every real distance (at most ~20,016 km)."""
RELEVANCE_CANDIDATES = 1000
RECENT_FIRST = 2000
"""PostgreSQL reads this many newest rows for a text match before asking the GIN index."""
MAX_TERMS = 8
SEARCH_TABLE_PREFIX = "listing_search"
SEARCH_COLUMN = "search_vector"

Located = tuple[Expr, Expr, ColumnElement[bool]]
"""Latitude, longitude, and when that pair is the one that locates a row."""

_WORD = re.compile(r"\w+", re.UNICODE)
_search_metadata = MetaData()
search_keys = Table(
    "listing_search_keys",
    _search_metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(8)),
    Column("ref", String(32)),
)
fts = Table("listing_search", _search_metadata, Column("rowid", Integer, primary_key=True))


def key_ms(when: datetime) -> int:
    """The millisecond a SQLite search key encodes for `when` (as migration 0013 computes it)."""
    ms = (when - EPOCH) // timedelta(milliseconds=1)
    return max(0, min(ms, MAX_KEY_MS))


def is_search_object(name: str | None, type_: str) -> bool:
    """Schema objects the search needs that the models do not describe (see migration 0009)."""
    if name is None:
        return False
    if type_ == "table":
        return name.startswith(SEARCH_TABLE_PREFIX)
    if type_ == "column":
        return name == SEARCH_COLUMN
    if type_ == "index":
        return name.endswith(f"_{SEARCH_COLUMN}")
    return False


def terms(text: str) -> list[str]:
    """The words of a query, lower-cased; punctuation and operators are not syntax here."""
    return [word.lower() for word in _WORD.findall(text)][:MAX_TERMS]


def _fts_query(words: list[str]) -> str:
    return " ".join(f'"{word}"*' for word in words)


def _ts_query(words: list[str]) -> ColumnElement[Any]:
    text = " & ".join(f"{word}:*" for word in words)
    return func.to_tsquery(literal_column("'simple'::regconfig"), text)


def _fts_match(words: list[str]) -> ColumnElement[bool]:
    return literal_column("listing_search").op("MATCH")(_fts_query(words))


def _vector(source: Any) -> ColumnElement[Any]:
    return literal_column(f"{source.model.__tablename__}.{SEARCH_COLUMN}")


def text_condition(session: AsyncSession, source: Any, words: list[str]) -> ColumnElement[bool]:
    """`source`'s rows that match `words`, for a query that reads them in another order."""
    if is_postgresql(session):
        return _vector(source).op("@@")(_ts_query(words))
    rowids = select(fts.c.rowid).where(_fts_match(words))
    keys = select(search_keys.c.ref).where(
        search_keys.c.source == source.search_key, search_keys.c.id.in_(rowids)
    )
    return source.model.id.in_(keys)  # type: ignore[no-any-return]


async def newest_matches(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
    *,
    since: datetime | None = None,
) -> list[Row[Any]]:
    """Up to `limit + 1` rows of `source` matching `words`, newest first, after `position`
    and no older than `since`.

    `source` is a `storage.repositories.browse.Source`; `where` its conditions.
    """
    if since is not None:
        where = [*where, source.time >= since]
    if is_postgresql(session):
        return await _pg_newest(session, source, words, where, position, limit)
    return await _sqlite_newest(session, source, words, where, position, limit, since)


def _ordered_newest(source: Any, query: Select[Any], position: Position | None) -> Select[Any]:
    if position is not None:
        query = query.where(after(source.time, source.model.ap_id, position))
    return query.order_by(source.time.desc(), source.model.ap_id.desc())


async def _exact_newest(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """The plain way: every match, sorted. Exact whatever the keys; slow for common words."""
    query = source.select_from(select(*source.columns())).where(
        *where, text_condition(session, source, words)
    )
    query = _ordered_newest(source, query, position).limit(limit + 1)
    return list((await session.execute(query)).all())


async def _sqlite_newest(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
    since: datetime | None,
) -> list[Row[Any]]:
    """Walk the matches by descending search key (time order) and stop after a page
    (or at `since`'s millisecond, which bounds the walk in the index itself).

    Keys order rows by millisecond only, so the rows of the page's last
    millisecond are all read again and sorted by (time, id) like any page.
    """
    model = source.model
    lead = fts.join(search_keys, search_keys.c.id == fts.c.rowid).join(
        model, model.id == search_keys.c.ref
    )
    columns = [*source.columns(), fts.c.rowid.label("search_key")]
    base = source.select_from(select(*columns), lead).where(
        _fts_match(words), search_keys.c.source == source.search_key, *where
    )
    if since is not None:
        base = base.where(fts.c.rowid >= key_ms(since) * KEY_SLOTS)
    if position is not None:
        assert isinstance(position.sort, datetime)
        base = base.where(
            fts.c.rowid < (key_ms(position.sort) + 1) * KEY_SLOTS,
            after(source.time, model.ap_id, position),
        )
    walked = base.order_by(fts.c.rowid.desc()).limit(limit + 1)
    rows = list((await session.execute(walked)).all())
    if len(rows) > limit:
        last = rows[-1].search_key // KEY_SLOTS
        tied = base.where(fts.c.rowid >= last * KEY_SLOTS, fts.c.rowid < (last + 1) * KEY_SLOTS)
        rows = [r for r in rows if r.search_key // KEY_SLOTS > last]
        rows += (await session.execute(tied)).all()
    if any(row.search_key // KEY_SLOTS != key_ms(row.shown_at) for row in rows):
        return await _exact_newest(session, source, words, where, position, limit)
    rows.sort(key=lambda r: (r.shown_at, r.ap_id), reverse=True)
    return rows[: limit + 1]


async def _pg_newest(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """The newest `RECENT_FIRST` rows (an index walk) hold a page for a common word;
    otherwise the GIN index finds the few matches of a rarer one."""
    model, query = source.model, _ts_query(words)
    recent = _ordered_newest(
        source,
        select(
            model.id,
            source.time.label("t"),
            model.ap_id.label("a"),
            _vector(source).label(SEARCH_COLUMN),
        ).where(*where),
        position,
    )
    recent_sub = recent.limit(RECENT_FIRST).subquery()
    first = (
        select(recent_sub.c.id)
        .where(recent_sub.c[SEARCH_COLUMN].op("@@")(query))
        .order_by(recent_sub.c.t.desc(), recent_sub.c.a.desc())
        .limit(limit + 1)
    )
    page = _ordered_newest(
        source, source.select_from(select(*source.columns())).where(model.id.in_(first)), None
    )
    rows = list((await session.execute(page)).all())
    if len(rows) > limit:
        return rows
    return await _pg_all_matches_newest(session, source, words, where, position, limit)


async def _pg_all_matches_newest(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """Every match, from the GIN index, then sorted: for a word too rare for the newest rows.

    A materialised CTE, since asked for the order and a limit directly, the
    planner may walk the time index instead and read every row for a rare word.
    """
    model = source.model
    matches = select(model.id, source.time.label("t"), model.ap_id.label("a")).where(
        *where, _vector(source).op("@@")(_ts_query(words))
    )
    if position is not None:
        matches = matches.where(after(source.time, model.ap_id, position))
    found = matches.cte("matches").prefix_with("MATERIALIZED")
    query = source.select_from(
        select(*source.columns()), model.__table__.join(found, found.c.id == model.id)
    )
    query = query.order_by(found.c.t.desc(), found.c.a.desc()).limit(limit + 1)
    return list((await session.execute(query)).all())


async def _pg_candidates(
    session: AsyncSession, source: Any, words: list[str], where: Sequence[ColumnElement[bool]]
) -> list[str]:
    """Ids of the `RELEVANCE_CANDIDATES` newest matches: from the newest rows when they
    hold that many (a common word), else from the GIN index (a rarer one)."""
    model, query = source.model, _ts_query(words)
    recent = (
        select(model.id, source.time.label("t"), _vector(source).label(SEARCH_COLUMN))
        .where(*where)
        .order_by(source.time.desc())
        .limit(RECENT_FIRST * 2)
        .subquery()
    )
    first = (
        select(recent.c.id)
        .where(recent.c[SEARCH_COLUMN].op("@@")(query))
        .order_by(recent.c.t.desc())
        .limit(RELEVANCE_CANDIDATES)
    )
    ids = list((await session.scalars(first)).all())
    if len(ids) >= RELEVANCE_CANDIDATES:
        return ids
    every = (
        select(model.id, source.time.label("t"))
        .where(*where, _vector(source).op("@@")(query))
        .cte("every_match")
        .prefix_with("MATERIALIZED")
    )
    newest_first = select(every.c.id).order_by(every.c.t.desc()).limit(RELEVANCE_CANDIDATES)
    return list((await session.scalars(newest_first)).all())


async def ranked_matches(
    session: AsyncSession,
    source: Any,
    words: list[str],
    where: Sequence[ColumnElement[bool]],
    position: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit + 1` matches by relevance (`score`, lower is better), after `position`.

    Only the `RELEVANCE_CANDIDATES` newest matches are scored (module docstring).
    """
    model = source.model
    if is_postgresql(session):
        candidates = await _pg_candidates(session, source, words, where)
        if not candidates:
            return []
        score: ColumnElement[Any] = -func.ts_rank(_vector(source), _ts_query(words))
        ranked = source.select_from(select(*source.columns(), score.label("score")))
        ranked = ranked.where(model.id.in_(candidates))
    else:
        newest_docs = (
            select(
                fts.c.rowid.label("doc"),
                func.bm25(literal_column("listing_search")).label("score"),
            )
            .where(_fts_match(words))
            .order_by(fts.c.rowid.desc())
            .limit(RELEVANCE_CANDIDATES)
            .subquery()
        )
        score = newest_docs.c.score
        lead = newest_docs.join(search_keys, search_keys.c.id == newest_docs.c.doc).join(
            model, model.id == search_keys.c.ref
        )
        ranked = source.select_from(select(*source.columns(), score.label("score")), lead)
        ranked = ranked.where(search_keys.c.source == source.search_key, *where)
    if position is not None:
        ranked = ranked.where(after(score, model.ap_id, position, descending=False))
    ranked = ranked.order_by(score, model.ap_id).limit(limit + 1)
    return list((await session.execute(ranked)).all())


# --- distance ----------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


@dataclass(frozen=True)
class Box:
    """The bounds of `bounding_box`: latitudes south..north and, unless the circle
    covers a pole or every longitude (`west` None), longitudes west..east, or, when
    it `wraps` across the antimeridian, from `west` on or up to `east`."""

    south: float
    north: float
    west: float | None = None
    east: float | None = None
    wraps: bool = False


def box_of(point: Point, radius_km: float) -> Box:
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    south, north = point.lat - dlat, point.lat + dlat
    clamped = max(south, -90.0), min(north, 90.0)
    if south <= -90 or north >= 90:
        return Box(*clamped)  # the circle covers a pole: every longitude
    dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(point.lat))))
    if dlon >= 180:
        return Box(*clamped)
    west, east = point.lon - dlon, point.lon + dlon
    if west < -180:
        return Box(*clamped, west + 360, east, wraps=True)
    if east > 180:
        return Box(*clamped, west, east - 360, wraps=True)
    return Box(*clamped, west, east)


def box_condition(box: Box, lat: Expr, lon: Expr, bounds: Sequence[Any]) -> ColumnElement[bool]:
    """`box` as SQL on (lat, lon), with `bounds` standing for its south, north, west and
    east (its values, or parameters that will carry them)."""
    south, north, west, east = bounds
    condition = lat.between(south, north)
    if box.west is None:
        return condition
    if box.wraps:
        return and_(condition, or_(lon >= west, lon <= east))
    return and_(condition, lon.between(west, east))


def bounding_box(point: Point, radius_km: float, lat: Expr, lon: Expr) -> ColumnElement[bool]:
    """A condition an index on (lat, lon) can serve that holds for everything within
    `radius_km` of `point` (and a little more, which the exact distance removes)."""
    box = box_of(point, radius_km)
    return box_condition(box, lat, lon, (box.south, box.north, box.west, box.east))


def distance_km(session: AsyncSession, point: Point, lat: Expr, lon: Expr) -> ColumnElement[float]:
    """Great-circle distance in SQL (both databases have the math functions)."""
    cos_lat = math.cos(math.radians(point.lat))
    return distance_from(session, (point.lat, point.lon, cos_lat), lat, lon)


def distance_from(
    session: AsyncSession, point: Sequence[Any], lat: Expr, lon: Expr
) -> ColumnElement[float]:
    """`distance_km` from `point` given as (latitude, longitude, cosine of the latitude):
    values, or parameters that will carry them.

    The haversine term is clamped to 1, since rounding can push it a hair
    above for antipodal points and asin() of that fails on PostgreSQL.
    """
    p_lat, p_lon, cos_p_lat = point
    half_dlat = func.radians(lat - p_lat) / 2
    half_dlon = func.radians(lon - p_lon) / 2
    h = func.pow(func.sin(half_dlat), 2) + cos_p_lat * func.cos(func.radians(lat)) * func.pow(
        func.sin(half_dlon), 2
    )
    root = func.sqrt(h)
    clamped = func.least(root, 1.0) if is_postgresql(session) else func.min(root, 1.0)
    return (2 * EARTH_RADIUS_KM * func.asin(clamped)).cast(Float)


def haversine_km(a: Point, b: Point) -> float:
    """The same distance in Python, for what is not read from the database."""
    half_dlat = math.radians(b.lat - a.lat) / 2
    half_dlon = math.radians(b.lon - a.lon) / 2
    h = (
        math.sin(half_dlat) ** 2
        + math.cos(math.radians(a.lat)) * math.cos(math.radians(b.lat)) * math.sin(half_dlon) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def within(
    session: AsyncSession,
    point: Point,
    radius_km: float | None,
    located: list[Located],
) -> ColumnElement[bool]:
    """Inside the radius, for rows located by the first of `located` whose guard holds.

    Each entry is (latitude, longitude, guard): a listing's own place when it
    has one, else its community's. Each branch is a bounding box on that
    pair's index and the exact distance.
    """
    if radius_km is None:
        return true()
    branches = [
        and_(
            guard,
            bounding_box(point, radius_km, lat, lon),
            distance_km(session, point, lat, lon) <= radius_km,
        )
        for lat, lon, guard in located
    ]
    return or_(*branches)
