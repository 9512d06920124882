"""The offer/need form: what the browser sends, turned into the API's own models.

Validation is the API's (`ListingCreate`/`ListingUpdate`); this module only
reads form fields, keeps what the member typed for re-display, and words the
errors for people rather than programs.

Who can see a listing is one checkbox, "Make visible to other communities",
and, when it is ticked, a choice between every community and partners only:

| checkbox  | audience  | visibility |
|-----------|-----------|------------|
| unticked  | (ignored) | community  |
| ticked    | public    | public     |
| ticked    | partners  | partners   |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from node.api.schemas import ListingCreate, ListingUpdate
from storage.models import Listing

AUDIENCES = ("public", "partners")
KINDS = ("offer", "need")


@dataclass
class ListingForm:
    kind: str = "offer"
    title: str = ""
    description: str = ""
    category: str = ""
    latitude: str = ""
    longitude: str = ""
    share: bool = False
    audience: str = "public"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, kind: str | None) -> ListingForm:
        return cls(kind=kind if kind in KINDS else "offer")

    @classmethod
    def from_listing(cls, listing: Listing) -> ListingForm:
        return cls(
            kind=listing.kind,
            title=listing.title,
            description=listing.description,
            category=listing.category,
            latitude=_coordinate_text(listing.latitude),
            longitude=_coordinate_text(listing.longitude),
            share=listing.visibility != "community",
            audience="partners" if listing.visibility == "partners" else "public",
        )

    @classmethod
    def from_post(cls, form: Mapping[str, Any]) -> ListingForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.replace("\r\n", "\n") if isinstance(value, str) else ""

        return cls(
            kind=text("kind"),
            title=text("title"),
            description=text("description"),
            category=text("category"),
            latitude=text("latitude").strip(),
            longitude=text("longitude").strip(),
            share=form.get("share") == "yes",
            audience=text("audience") or "public",
        )

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
        if not self.share:
            return "community"
        if self.audience not in AUDIENCES:
            self.errors["visibility"] = "Choose who else can see this listing."
            return "community"
        return self.audience

    def _location(self) -> dict[str, float] | None:
        if not self.latitude and not self.longitude:
            return None
        try:
            return {"lat": float(self.latitude), "lon": float(self.longitude)}
        except ValueError:
            self.errors["location"] = "Give both latitude and longitude as numbers, or neither."
            return None


def _coordinate_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


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
