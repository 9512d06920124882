"""The offer/need form: what the browser sends, turned into the API's own models.

Validation is the API's (`ListingCreate`/`ListingUpdate`); this module only
reads form fields, keeps what the member typed for re-display, and words the
errors for people rather than programs.

Who can see a listing is one choice of three (`visibility`): only our
community, our partner communities too, or everyone. A new listing starts at
the least open choice that still shares: `partners` when the community has an
active partnership, otherwise `community` (with no partner, `partners` would
reach nobody more, and `public` is a choice a member should make on purpose).

Where it is (`place`): the community's own place (no location of its own),
or a point picked on the map or typed in, kept as precisely as the member
chooses (`precision`, see `node.domain.places`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from node.api.schemas import ListingCreate, ListingUpdate
from storage.models import Listing
from storage.states import LocationPrecision, Visibility

KINDS = ("offer", "need")
VISIBILITIES = tuple(Visibility)
PRECISIONS = tuple(LocationPrecision)
PLACES = ("community", "point")
DEFAULT_PRECISION = LocationPrecision.NEIGHBOURHOOD


def default_visibility(has_partners: bool) -> str:
    """The least open choice that still shares beyond the member's own listing page."""
    return Visibility.PARTNERS if has_partners else Visibility.COMMUNITY


@dataclass
class ListingForm:
    kind: str = "offer"
    title: str = ""
    description: str = ""
    category: str = ""
    visibility: str = Visibility.COMMUNITY
    place: str = "community"
    latitude: str = ""
    longitude: str = ""
    precision: str = DEFAULT_PRECISION
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, kind: str | None, *, has_partners: bool) -> ListingForm:
        return cls(
            kind=kind if kind in KINDS else "offer",
            visibility=default_visibility(has_partners),
        )

    @classmethod
    def from_listing(cls, listing: Listing) -> ListingForm:
        located = listing.latitude is not None and listing.longitude is not None
        return cls(
            kind=listing.kind,
            title=listing.title,
            description=listing.description,
            category=listing.category,
            visibility=listing.visibility,
            place="point" if located else "community",
            latitude=_coordinate_text(listing.latitude),
            longitude=_coordinate_text(listing.longitude),
            precision=listing.location_precision if located else DEFAULT_PRECISION,
        )

    @classmethod
    def from_post(cls, form: Mapping[str, Any]) -> ListingForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.replace("\r\n", "\n") if isinstance(value, str) else ""

        latitude, longitude = text("latitude").strip(), text("longitude").strip()
        typed_point = bool(latitude or longitude)
        return cls(
            kind=text("kind"),
            title=text("title"),
            description=text("description"),
            category=text("category"),
            visibility=text("visibility") or _legacy_visibility(form),
            place=text("place") or ("point" if typed_point else "community"),
            latitude=latitude,
            longitude=longitude,
            precision=text("precision") or DEFAULT_PRECISION,
        )

    @property
    def has_point(self) -> bool:
        return self.place == "point"

    def to_create(self) -> ListingCreate | None:
        result = self._validated(ListingCreate)
        return result if isinstance(result, ListingCreate) else None

    def to_update(self) -> ListingUpdate | None:
        result = self._validated(ListingUpdate)
        return result if isinstance(result, ListingUpdate) else None

    def _validated(self, model: type[BaseModel]) -> BaseModel | None:
        data: dict[str, Any] = {
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "visibility": self._visibility(),
            "location": self._location(),
        }
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.errors.setdefault(str(error["loc"][0]), _message(error))
            return None
        return None if self.errors else validated

    def _visibility(self) -> str:
        if self.visibility not in VISIBILITIES:
            self.errors["visibility"] = "Choose who can see this listing."
            return Visibility.COMMUNITY
        return self.visibility

    def _location(self) -> dict[str, Any] | None:
        if self.place not in PLACES:
            self.errors["location"] = "Choose where this is."
            return None
        if self.place == "community":
            return None
        if self.precision not in PRECISIONS:
            self.errors["precision"] = "Choose how precisely to show the place."
            return None
        if not self.latitude and not self.longitude:
            self.errors["location"] = (
                "Pick a point on the map, or type its latitude and longitude below."
            )
            return None
        try:
            lat, lon = float(self.latitude), float(self.longitude)
        except ValueError:
            self.errors["location"] = "Give both latitude and longitude as numbers."
            return None
        return {"lat": lat, "lon": lon, "precision": self.precision}


def _legacy_visibility(form: Mapping[str, Any]) -> str:
    """The form before the three-way choice: a "share" box, then public or partners."""
    if form.get("share") != "yes":
        return Visibility.COMMUNITY
    audience = form.get("audience")
    return audience if isinstance(audience, str) and audience else Visibility.PUBLIC


def _coordinate_text(value: float | None) -> str:
    """Every digit that was stored (`:g` would cut an exact point to six digits)."""
    return "" if value is None else f"{value:.7f}".rstrip("0").rstrip(".")


def _message(error: Mapping[str, Any]) -> str:
    """A sentence a member can act on, for the pydantic errors these forms can produce."""
    kind, ctx, loc = error["type"], error.get("ctx", {}), error["loc"]
    if kind in ("string_too_short", "missing"):
        return "Please fill this in."
    if kind == "string_too_long":
        return f"Please keep this under {ctx.get('max_length')} characters."
    if loc[0] == "kind":
        return "Choose whether this is an offer or a need."
    if loc[0] == "location":
        return "Latitude must be between -90 and 90, longitude between -180 and 180."
    return str(error["msg"])
