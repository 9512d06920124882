"""The search forms of the network pages: what a GET query string asks for.

Every filter lives in the URL, so a search can be bookmarked or sent to
someone. A form keeps what was typed, as typed, for re-display, and says per
field what is wrong; only a form without errors becomes a query for
`node.services.discovery`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from node.domain.listings import Place
from node.services.discovery import BrowseQuery, CommunityQuery
from storage.paging import Position
from storage.states import Kind, Origin

MAX_TEXT = 200
MAX_RADIUS_KM = 20_000.0
RADIUS_CHOICES = ("5", "10", "25", "50", "100", "250")
SORTS = {"newest": "Newest first", "distance": "Nearest first", "relevance": "Best match"}
ORIGINS = {
    "local": "Our community",
    "partner": "Partner communities",
    "public": "Public network",
}


def _text(query: Mapping[str, str], name: str) -> str:
    return " ".join(query.get(name, "").split())[:MAX_TEXT]


@dataclass
class PlaceFilter:
    """A point (typed, or picked on the map) and a radius around it."""

    lat: str = ""
    lon: str = ""
    radius_km: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> PlaceFilter:
        return cls(
            lat=_text(query, "lat"), lon=_text(query, "lon"), radius_km=_text(query, "radius_km")
        )

    def check(self) -> Place | None:
        """The point typed, if both halves are there and valid; errors say what is not."""
        lat = self._coordinate("lat", self.lat, 90)
        lon = self._coordinate("lon", self.lon, 180)
        if bool(self.lat) != bool(self.lon) and "lat" not in self.errors:
            self.errors["lat"] = "Give both latitude and longitude, or neither."
        if self.radius_km:
            radius = _number(self.radius_km)
            if radius is None or not 0 < radius <= MAX_RADIUS_KM:
                self.errors["radius_km"] = "The distance must be a number of kilometres above 0."
        if lat is None or lon is None:
            return None
        return Place(lat, lon)

    @property
    def radius(self) -> float | None:
        return _number(self.radius_km) if self.radius_km else None

    @property
    def radius_choices(self) -> tuple[str, ...]:
        """The usual distances, and the one in the URL if it is another."""
        if self.radius_km and self.radius_km not in RADIUS_CHOICES:
            return (*RADIUS_CHOICES, self.radius_km)
        return RADIUS_CHOICES

    def _coordinate(self, name: str, value: str, limit: int) -> float | None:
        if not value:
            return None
        number = _number(value)
        if number is None or not -limit <= number <= limit:
            word = "Latitude" if name == "lat" else "Longitude"
            self.errors[name] = f"{word} must be a number from -{limit} to {limit}."
            return None
        return number


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass
class BrowseForm:
    """The "Browse network" filters, as typed."""

    q: str = ""
    kind: str = ""
    category: str = ""
    community: str = ""
    origin: str = ""
    sort: str = "newest"
    place: PlaceFilter = field(default_factory=PlaceFilter)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> BrowseForm:
        return cls(
            q=_text(query, "q"),
            kind=_text(query, "kind"),
            category=_text(query, "category").lower(),
            community=_text(query, "community").removeprefix("@"),
            origin=_text(query, "origin"),
            sort=_text(query, "sort") or "newest",
            place=PlaceFilter.from_query(query),
        )

    @property
    def filtered(self) -> bool:
        chosen = (self.q, self.kind, self.category, self.community, self.origin)
        return any(chosen) or bool(self.place.lat or self.place.radius_km)

    def to_query(
        self, home: Place | None, after: Position | None, limit: int
    ) -> tuple[BrowseQuery | None, Place | None]:
        """The service query, measured from the point typed or else from `home`;
        None while any field is wrong (the errors say which)."""
        point = self.place.check() or home
        self.errors.update(self.place.errors)
        if self.kind and self.kind not in tuple(Kind):
            self.errors["kind"] = "Choose offers, needs, or both."
        if self.origin and self.origin not in tuple(Origin):
            self.errors["origin"] = "Choose one of the communities listed."
        if self.sort not in SORTS:
            self.errors["sort"] = "Choose one of the orders listed."
        if self.community and "@" not in self.community.strip("@"):
            self.errors["community"] = "Give the community's handle, like riverside@example.org."
        if self.place.radius_km and point is None:
            self.errors["radius_km"] = "Pick a point on the map or type one to search around."
        if self.errors:
            return None, point
        query = BrowseQuery(
            q=self.q or None,
            kind=Kind(self.kind) if self.kind else None,
            category=self.category or None,
            community=self.community or None,
            origin=Origin(self.origin) if self.origin else None,
            lat=point.lat if point else None,
            lon=point.lon if point else None,
            radius_km=self.place.radius,
            sort=self.sort,
            limit=limit,
            after=after,
        )
        return query, point


@dataclass
class CommunitiesForm:
    """The "Communities" filters, as typed: a name and a place."""

    q: str = ""
    place: PlaceFilter = field(default_factory=PlaceFilter)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CommunitiesForm:
        return cls(q=_text(query, "q"), place=PlaceFilter.from_query(query))

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.place.lat or self.place.radius_km)

    def to_query(
        self, home: Place | None, after: Position | None, limit: int
    ) -> tuple[CommunityQuery | None, Place | None]:
        point = self.place.check() or home
        self.errors.update(self.place.errors)
        if self.place.radius_km and point is None:
            self.errors["radius_km"] = "Pick a point on the map or type one to search around."
        if self.errors:
            return None, point
        query = CommunityQuery(
            q=self.q or None,
            lat=point.lat if point else None,
            lon=point.lon if point else None,
            radius_km=self.place.radius,
            limit=limit,
            after=after,
        )
        return query, point
