"""Listing use cases: who may create, change and see what."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.geo import distance_km
from node.domain.listings import (
    CommunityRef,
    ListingChanges,
    ListingDetail,
    ListingDraft,
    ListingView,
    Place,
    view_of_listing,
    view_of_remote,
    view_of_row,
)
from node.domain.places import kept_place
from node.domain.urls import listing as listing_url
from node.domain.visibility import Viewer, may_view, resolve_visibility
from node.errors import Forbidden, NotFound, ValidationFailed
from node.protocol.publishing import publish_listing_change
from storage.models import Community, Listing, Member, new_id, utcnow
from storage.paging import Position
from storage.repositories import ListingFilters, ListingRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import ListingStatus, LocationPrecision, Visibility


def _visibility_or_422(visibility: str | None, is_public: bool | None) -> str:
    """Resolve the pair or answer 422; mypy sees str, the rule guarantees a Visibility."""
    try:
        return resolve_visibility(visibility, is_public)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc


async def create_listing(
    session: AsyncSession, member: Member, data: ListingDraft, *, publish: bool = True
) -> Listing:
    """`publish=False` leaves the Create to the caller, who adds to the listing first."""
    visibility = _visibility_or_422(data.visibility, data.is_public)
    listing_id = new_id()
    now = utcnow()
    listing = Listing(
        id=listing_id,
        ap_id=listing_url(member.community.ap_id, listing_id),
        community_id=member.community_id,
        author_id=member.id,
        kind=data.kind,
        title=data.title,
        description=data.description,
        category=data.category,
        status=ListingStatus.ACTIVE,
        visibility=visibility,
        is_public=visibility == Visibility.PUBLIC,
        created_at=now,
        updated_at=now,
        images=[],
    )
    _set_place(listing, data.location, data.location_precision)
    await ListingRepository(session).add(listing)
    listing.community = member.community
    listing.author = member
    if publish:
        await publish_listing_change(session, listing, None, "create")
    return listing


def _set_place(listing: Listing, place: Place | None, precision: LocationPrecision) -> None:
    """Keep the point only as precisely as the member chose."""
    kept = kept_place(place, precision) if place is not None else None
    listing.latitude = kept.lat if kept else None
    listing.longitude = kept.lon if kept else None
    listing.location_precision = precision if kept else LocationPrecision.EXACT


async def get_visible_listing(session: AsyncSession, member: Member, listing_id: str) -> Listing:
    listing = await ListingRepository(session).get(listing_id)
    if listing is None or not may_view(listing, Viewer(local_community_id=member.community_id)):
        raise NotFound("no such listing")
    return listing


async def update_listing(
    session: AsyncSession, member: Member, listing_id: str, changes: ListingChanges
) -> Listing:
    listing = await get_visible_listing(session, member, listing_id)
    if not may_edit(member, listing):
        raise Forbidden("only the author or a steward may change this listing")
    previous = listing.visibility
    if changes.has("visibility") or changes.has("is_public"):
        visibility: str | None = changes.get("visibility")
        is_public: bool | None = changes.get("is_public")
        if visibility is None and is_public is not None:
            visibility = Visibility.PUBLIC if is_public else _non_public(previous)
        listing.visibility = _visibility_or_422(visibility, is_public)
        listing.is_public = listing.visibility == Visibility.PUBLIC
    for field in ("kind", "title", "description", "category", "status"):
        if changes.get(field) is not None:
            setattr(listing, field, changes.get(field))
    if changes.has("location"):
        precision = changes.get("location_precision") or LocationPrecision.EXACT
        _set_place(listing, changes.get("location"), LocationPrecision(precision))
    listing.updated_at = utcnow()
    await session.flush()
    await publish_listing_change(session, listing, previous, "update")
    return listing


async def close_listings_of(session: AsyncSession, author: Member) -> int:
    """Close every open listing `author` posted, each federated as any close is.

    For a member leaving the community: what they offered can no longer be
    arranged with them. Returns how many were closed.
    """
    listings = await ListingRepository(session).active_by_author(author.id)
    for listing in listings:
        previous = listing.visibility
        listing.status = ListingStatus.CLOSED
        listing.updated_at = utcnow()
        await session.flush()
        await publish_listing_change(session, listing, previous, "update")
    return len(listings)


def _non_public(previous: str) -> str:
    """`is_public: false` on a public listing means community; otherwise keep what it was."""
    return Visibility.COMMUNITY if previous == Visibility.PUBLIC else previous


async def delete_listing(session: AsyncSession, member: Member, listing_id: str) -> Listing:
    """Deletes and federates the Delete; returns the row as it was, for the caller's message."""
    listing = await get_visible_listing(session, member, listing_id)
    if not may_edit(member, listing):
        raise Forbidden("only the author or a steward may delete this listing")
    await publish_listing_change(session, listing, listing.visibility, "delete")
    await ListingRepository(session).delete(listing)
    return listing


async def list_listings_for_member(
    session: AsyncSession,
    member: Member,
    filters: ListingFilters,
    *,
    include_public: bool = False,
    include_partners: bool = False,
    after: Position | None = None,
    limit: int = 50,
) -> tuple[list[ListingView], Position | None]:
    """Own community's listings, plus mirrored ones when asked; newest first, keyset-paged.

    Each source gives at most `limit + 1` rows after `after`; merged and cut
    to `limit`, they are exactly the next page, and one left over means
    there is another. Returns the page and where the next one starts.
    """
    found = await RemoteListingRepository(session).page_visible_to(
        member.community_id,
        filters,
        after,
        limit,
        include_public=include_public,
        include_partners=include_partners,
        include_own=True,
    )
    views = [
        view_of_row(f.row, CommunityRef(id=f.home.ap_id, handle=f.home.handle, name=f.home.name))
        for f in found
    ]
    page = views[:limit]
    more = len(views) > limit
    return page, Position(page[-1].created_at, page[-1].ap_id) if more and page else None


def may_edit(member: Member, listing: Listing) -> bool:
    """The edit rule, public so that pages can offer (or refuse) a form before it is sent."""
    if member.community_id != listing.community_id:
        return False
    return member.is_steward or listing.author_id == member.id


async def get_listing_detail(
    session: AsyncSession, member: Member, listing_id: str
) -> ListingDetail:
    """Any listing the member may see by its local id: one of ours, or a mirrored one.

    A mirrored listing is shown under the same rule as the lists: public ones to
    every community here, partner-only ones to a community in an active
    partnership with its origin, none from a blocked host. Anything else is a
    404, the same answer as for an id that does not exist.
    """
    listing = await ListingRepository(session).get(listing_id)
    if listing is not None and may_view(listing, Viewer(local_community_id=member.community_id)):
        own = listing.author_id is not None and listing.author_id == member.id
        return _detail(
            view_of_listing(listing, member.community_id),
            listing.community,
            member,
            own,
            may_edit(member, listing),
        )
    cached = await RemoteListingRepository(session).get_visible_to(member.community_id, listing_id)
    if cached is None:
        raise NotFound("no such listing")
    return _detail(view_of_remote(cached), cached.origin_community, member, False, False)


def _place_of(community: Community) -> Place | None:
    if community.latitude is None or community.longitude is None:
        return None
    return Place(community.latitude, community.longitude)


def _detail(
    view: ListingView, community: Community, member: Member, own: bool, can_edit: bool
) -> ListingDetail:
    place = view.location or _place_of(community)
    home = _place_of(member.community)
    return ListingDetail(
        listing=view,
        place=place,
        place_is_community=view.location is None and place is not None,
        distance_km=distance_km(home, place) if home and place else None,
        is_own=own,
        can_edit=can_edit,
    )
