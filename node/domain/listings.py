"""Listings as the use cases see them: what a member asks for, and what is shown back.

The API and the pages convert their own input (JSON, forms) into a
`ListingDraft` or `ListingChanges`, and turn the `ListingView`s the services
return into JSON or HTML. Our own listings and mirrored ones become the same
`ListingView`, so nothing above the services tells them apart by type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.domain import urls
from node.domain.places import Place as Place  # re-exported: callers know it as a listing's
from node.domain.places import precision_of, shared_place
from storage.models import Community, Listing, ListingImage, RemoteListing, loaded_images
from storage.states import Audience, Kind, ListingStatus, LocationPrecision, Origin, Visibility


@dataclass(frozen=True)
class CommunityRef:
    id: str
    handle: str
    name: str

    @classmethod
    def of(cls, community: Community) -> CommunityRef:
        return cls(id=community.ap_id, handle=community.handle, name=community.name)


@dataclass(frozen=True)
class ListingDraft:
    """A new listing as a member describes it; `visibility` and `is_public` may both be unset."""

    kind: Kind
    title: str
    description: str = ""
    category: str = ""
    visibility: Visibility | None = None
    is_public: bool | None = None
    location: Place | None = None
    location_precision: LocationPrecision = LocationPrecision.EXACT


@dataclass(frozen=True)
class ListingChanges:
    """The fields a member changed, and only those (an absent key is left as it is)."""

    fields: Mapping[str, Any]

    def has(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str) -> Any:
        return self.fields.get(name)


@dataclass(frozen=True)
class ImageView:
    """A photo as pages and the API show it: always from this node's own media URLs.

    `url` (display size) and `thumb_url` are None while a remote listing's
    image has not been fetched yet; nothing then points at the other node.
    """

    id: str
    description: str
    url: str | None
    thumb_url: str | None
    width: int | None
    height: int | None

    @property
    def is_ready(self) -> bool:
        return self.url is not None


def image_view(image: ListingImage) -> ImageView:
    """URLs are paths on this node: pages load them from their own origin, and the
    API makes them absolute with the node's base URL."""
    key = image.storage_key
    return ImageView(
        id=image.id,
        description=image.description,
        url=urls.media("", key, "display") if key else None,
        thumb_url=urls.media("", key, "thumb") if key else None,
        width=image.width if key else None,
        height=image.height if key else None,
    )


@dataclass(frozen=True)
class ListingView:
    """One listing as a member sees it, whichever community it came from."""

    id: str
    ap_id: str
    kind: Kind
    title: str
    description: str
    category: str
    status: ListingStatus
    visibility: Visibility
    location: Place | None
    community: CommunityRef
    origin: Origin
    author_name: str | None
    created_at: datetime
    updated_at: datetime
    images: tuple[ImageView, ...] = ()
    location_precision: LocationPrecision = LocationPrecision.NEIGHBOURHOOD
    """How precise `location` is: what the author chose, as far as this viewer may see
    it (another community's listing is never more precise than a neighbourhood)."""

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC

    @property
    def latitude(self) -> float | None:
        return self.location.lat if self.location else None

    @property
    def longitude(self) -> float | None:
        return self.location.lon if self.location else None


def _place(latitude: float | None, longitude: float | None) -> Place | None:
    return Place(latitude, longitude) if latitude is not None and longitude is not None else None


def view_of_listing(listing: Listing, viewer_community_id: int | None = None) -> ListingView:
    """`viewer_community_id`: whose member looks, when it may be another local community
    (then the place is as coarse as what federates); None for the listing's own."""
    author = listing.author
    precision = precision_of(listing.location_precision)
    location = _place(listing.latitude, listing.longitude)
    if viewer_community_id not in (None, listing.community_id):
        location = shared_place(location, precision) if location is not None else None
        if precision == LocationPrecision.EXACT:
            precision = LocationPrecision.NEIGHBOURHOOD
    return ListingView(
        id=listing.id,
        ap_id=listing.ap_id,
        kind=Kind(listing.kind),
        title=listing.title,
        description=listing.description,
        category=listing.category,
        status=ListingStatus(listing.status),
        visibility=Visibility(listing.visibility),
        location=location,
        community=CommunityRef.of(listing.community),
        origin=Origin.LOCAL,
        author_name=author.shown_name if author is not None else None,
        created_at=listing.created_at,
        updated_at=listing.updated_at,
        images=tuple(image_view(image) for image in loaded_images(listing)),
        location_precision=precision,
    )


def view_of_remote(cached: RemoteListing) -> ListingView:
    """A mirrored listing, shown with its home community and how it reached us."""
    public = cached.audience == Audience.PUBLIC
    return ListingView(
        id=cached.id,
        ap_id=cached.ap_id,
        kind=Kind(cached.kind),
        title=cached.title,
        description=cached.description,
        category=cached.category,
        status=ListingStatus(cached.status),
        visibility=Visibility.PUBLIC if public else Visibility.PARTNERS,
        location=_place(cached.latitude, cached.longitude),
        community=CommunityRef.of(cached.origin_community),
        origin=Origin.PUBLIC if public else Origin.PARTNER,
        author_name=cached.author_name or None,
        created_at=cached.published_at or cached.received_at,
        updated_at=cached.remote_updated_at or cached.updated_at,
        images=tuple(image_view(image) for image in loaded_images(cached)),
    )


def view_of_row(
    row: Mapping[str, Any], community: CommunityRef, viewer_community_id: int | None = None
) -> ListingView:
    """A listing read as plain columns (`storage.repositories.browse`), either table.

    One of our own listings seen from another local community is as coarse as
    what federates, as in `view_of_listing`.
    """
    location = _place(row["latitude"], row["longitude"])
    precision = LocationPrecision.NEIGHBOURHOOD
    if row["origin"] == Origin.LOCAL:
        precision = precision_of(row.get("location_precision"))
        if viewer_community_id not in (None, row["home_id"]):
            location = shared_place(location, precision) if location is not None else None
            if precision == LocationPrecision.EXACT:
                precision = LocationPrecision.NEIGHBOURHOOD
    return ListingView(
        id=row["id"],
        ap_id=row["ap_id"],
        kind=Kind(row["kind"]),
        title=row["title"],
        description=row["description"],
        category=row["category"],
        status=ListingStatus(row["status"]),
        visibility=Visibility(row["visibility"]),
        location=location,
        community=community,
        origin=Origin(row["origin"]),
        author_name=row["author_name"],
        created_at=row["shown_at"],
        updated_at=row["updated_at"],
        images=tuple(image_view(image) for image in row.get("images", ())),
        location_precision=precision,
    )


@dataclass(frozen=True)
class ListingDetail:
    """A listing on its own page: where it is from the viewer, and what the viewer may do.

    `place` is the listing's own location or, when it has none, its community's
    (`place_is_community`); `distance_km` is measured from the viewer's
    community and is None when either end has no location.
    """

    listing: ListingView
    place: Place | None
    place_is_community: bool
    distance_km: float | None
    is_own: bool
    can_edit: bool
