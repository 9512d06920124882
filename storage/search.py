"""Full-text and distance SQL: the part of browsing that differs between databases.

Text: SQLite uses one FTS5 table over our listings and the mirror
(`listing_search`, rowid linked to a listing through `listing_search_keys`),
PostgreSQL a generated `tsvector` column with a GIN index on each listing
table (both made by migration 0009). Words are matched as prefixes ("drill"
finds "drills"), in any language, without stemming.

Ranking stays fast for common words by ranking a bounded candidate set: the
`RELEVANCE_CANDIDATES` most recently indexed matches are taken first (FTS5
walks its doclist by descending rowid and stops; PostgreSQL reads the GIN
bitmap and keeps the top N by `created_at`), and only those are scored
(bm25 / ts_rank) and ordered. A word in half of 100k listings thus costs one
index walk and N scorings, not 50k; a rare word has fewer than N matches and
all of them are ranked. Sorting by newest with a text filter never scores.

Distance: a bounding box on the indexed latitude/longitude columns picks the
candidates, then the exact great-circle (haversine) distance in SQL filters
and orders them, so keyset paging by distance is exact.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    Integer,
    MetaData,
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

EARTH_RADIUS_KM = 6371.0088
NO_DISTANCE_KM = 100_000.0
"""Sort key for something with no location: after every real distance (at most ~20,016 km)."""
RELEVANCE_CANDIDATES = 1000
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


@dataclass(frozen=True)
class TextMatch:
    """How one listing table is filtered by, and ranked for, a text query.

    `candidates` (ranked queries only) is a subquery of the bounded candidate
    set, with the listing id as `ref`, to be joined on `ref = table.id`;
    `rank` is then the sort key, lower is better.
    """

    condition: ColumnElement[bool]
    candidates: Any = None
    rank: ColumnElement[float] | None = None


def text_match(
    session: AsyncSession,
    table: Any,
    source: str,
    words: list[str],
    *,
    ranked: bool,
    newest: Expr,
) -> TextMatch:
    """The match of `words` in `table`; `source` is the key SQLite indexed its rows
    under (`local` or `remote`), `newest` picks PostgreSQL's candidates."""
    if is_postgresql(session):
        return _pg_match(table, words, ranked=ranked, newest=newest)
    return _sqlite_match(table, source, words, ranked=ranked)


def _sqlite_match(table: Any, source: str, words: list[str], *, ranked: bool) -> TextMatch:
    match = literal_column("listing_search").op("MATCH")(_fts_query(words))
    if not ranked:
        rowids = select(fts.c.rowid).where(match)
        keys = select(search_keys.c.ref).where(
            search_keys.c.source == source, search_keys.c.id.in_(rowids)
        )
        return TextMatch(table.c.id.in_(keys))
    newest_matches = (
        select(
            fts.c.rowid.label("doc"),
            func.bm25(literal_column("listing_search")).label("score"),
        )
        .where(match)
        .order_by(fts.c.rowid.desc())
        .limit(RELEVANCE_CANDIDATES)
        .subquery()
    )
    candidates = (
        select(search_keys.c.ref.label("ref"), newest_matches.c.score.label("score"))
        .join(newest_matches, newest_matches.c.doc == search_keys.c.id)
        .where(search_keys.c.source == source)
        .subquery()
    )
    return TextMatch(true(), candidates, candidates.c.score)


def _pg_match(table: Any, words: list[str], *, ranked: bool, newest: Expr) -> TextMatch:
    vector: ColumnElement[Any] = literal_column(f"{table.name}.{SEARCH_COLUMN}")
    query = _ts_query(words)
    match = vector.op("@@")(query)
    if not ranked:
        return TextMatch(match)
    candidates = (
        select(table.c.id.label("ref"))
        .where(match)
        .order_by(newest.desc())
        .limit(RELEVANCE_CANDIDATES)
        .subquery()
    )
    return TextMatch(true(), candidates, -func.ts_rank(vector, query))


# --- distance ----------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def bounding_box(point: Point, radius_km: float, lat: Expr, lon: Expr) -> ColumnElement[bool]:
    """A condition an index on (lat, lon) can serve that holds for everything within
    `radius_km` of `point` (and a little more, which the exact distance removes)."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    south, north = point.lat - dlat, point.lat + dlat
    condition = lat.between(max(south, -90.0), min(north, 90.0))
    if south <= -90 or north >= 90:
        return condition  # the circle covers a pole: every longitude
    dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(point.lat))))
    if dlon >= 180:
        return condition
    west, east = point.lon - dlon, point.lon + dlon
    if west < -180:
        return and_(condition, or_(lon >= west + 360, lon <= east))
    if east > 180:
        return and_(condition, or_(lon >= west, lon <= east - 360))
    return and_(condition, lon.between(west, east))


def distance_km(session: AsyncSession, point: Point, lat: Expr, lon: Expr) -> ColumnElement[float]:
    """Great-circle distance in SQL (both databases have the math functions).

    The haversine term is clamped to 1, since rounding can push it a hair
    above for antipodal points and asin() of that fails on PostgreSQL.
    """
    half_dlat = func.radians(lat - point.lat) / 2
    half_dlon = func.radians(lon - point.lon) / 2
    h = func.pow(func.sin(half_dlat), 2) + math.cos(math.radians(point.lat)) * func.cos(
        func.radians(lat)
    ) * func.pow(func.sin(half_dlon), 2)
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
