"""Between the API's models and the domain's: requests in, responses out, in one place."""

from __future__ import annotations

from typing import Any

from node.api.schemas import (
    AuthorRef,
    ImageOut,
    ListingCreate,
    ListingLocation,
    ListingOut,
    ListingUpdate,
    Location,
    PartnershipOut,
)
from node.api.schemas import (
    CommunityRef as CommunityRefOut,
)
from node.domain.listings import (
    CommunityRef,
    ImageView,
    ListingChanges,
    ListingDraft,
    ListingView,
    Place,
)
from storage.models import Community, CommunityPartnership
from storage.states import Initiator, Kind, LocationPrecision, PartnershipState, Visibility


def community_out(community: Community | CommunityRef) -> CommunityRefOut:
    ref = CommunityRef.of(community) if isinstance(community, Community) else community
    return CommunityRefOut(id=ref.id, handle=ref.handle, name=ref.name)


def _place(location: Location | None) -> Place | None:
    return Place(location.lat, location.lon) if location is not None else None


def _precision(location: ListingLocation | None) -> LocationPrecision:
    return LocationPrecision(location.precision) if location else LocationPrecision.EXACT


def draft_from(body: ListingCreate) -> ListingDraft:
    return ListingDraft(
        kind=Kind(body.kind),
        title=body.title,
        description=body.description,
        category=body.category,
        visibility=Visibility(body.visibility) if body.visibility else None,
        is_public=body.is_public,
        location=_place(body.location),
        location_precision=_precision(body.location),
    )


def changes_from(body: ListingUpdate) -> ListingChanges:
    """Only the fields the client sent; `location: null` clears the location."""
    sent = body.model_dump(exclude_unset=True)
    if "location" in sent:
        sent["location"] = _place(body.location)
        sent["location_precision"] = _precision(body.location)
    return ListingChanges(sent)


def image_out(image: ImageView, base_url: str) -> ImageOut | None:
    """A fetched photo with absolute URLs on this node; None for one not fetched yet."""
    if image.url is None or image.thumb_url is None or image.width is None:
        return None
    return ImageOut(
        id=image.id,
        url=base_url + image.url,
        thumbnail_url=base_url + image.thumb_url,
        width=image.width,
        height=image.height or 0,
        description=image.description,
    )


def listing_out(view: ListingView, base_url: str = "") -> ListingOut:
    """`base_url` (this node's) makes photo URLs absolute."""
    return ListingOut(**listing_fields(view, base_url))


def listing_fields(view: ListingView, base_url: str = "") -> dict[str, Any]:
    """What `ListingOut` is made of, for models that extend it (a browse item adds its
    distance) to be built in one step rather than by copying a `ListingOut`."""
    location = view.location
    images = [out for image in view.images if (out := image_out(image, base_url)) is not None]
    return dict(
        id=view.id,
        ap_id=view.ap_id,
        kind=view.kind,
        title=view.title,
        description=view.description,
        category=view.category,
        status=view.status,
        visibility=view.visibility,
        is_public=view.is_public,
        location=(
            ListingLocation(lat=location.lat, lon=location.lon, precision=view.location_precision)
            if location
            else None
        ),
        community=community_out(view.community),
        origin=view.origin,
        author=AuthorRef(name=view.author_name) if view.author_name else None,
        created_at=view.created_at,
        updated_at=view.updated_at,
        images=images,
    )


def partnership_out(partnership: CommunityPartnership) -> PartnershipOut:
    return PartnershipOut(
        id=partnership.id,
        state=PartnershipState(partnership.state),
        partner=community_out(partnership.remote_community),
        initiated_by=Initiator(partnership.initiated_by),
        message=partnership.message,
        created_at=partnership.created_at,
        updated_at=partnership.updated_at,
    )
