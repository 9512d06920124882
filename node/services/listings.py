"""Listing use cases: who may create, change and see what."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from node.api.schemas import CommunityRef, ListingCreate, ListingOut, ListingUpdate, Location
from node.errors import Forbidden, NotFound, ValidationFailed
from node.protocol.publishing import publish_listing_change
from node.services.visibility import Viewer, may_view, resolve_visibility
from storage.models import Community, Listing, Member, RemoteListing, new_id, utcnow
from storage.repositories import ListingFilters, ListingRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.remote_listings import RemoteListingRepository


@dataclass(frozen=True)
class ListingEvent:
    """What changed, for whoever must tell other nodes about it (federation hooks in here)."""

    action: str  # "create" | "update" | "delete"
    listing: Listing
    previous_visibility: str | None = None


def community_ref(community: Community) -> CommunityRef:
    return CommunityRef(id=community.ap_id, handle=community.handle, name=community.name)


def listing_to_api(listing: Listing) -> ListingOut:
    location = (
        Location(lat=listing.latitude, lon=listing.longitude)
        if listing.latitude is not None and listing.longitude is not None
        else None
    )
    return ListingOut(
        id=listing.id,
        ap_id=listing.ap_id,
        kind=listing.kind,  # type: ignore[arg-type]
        title=listing.title,
        description=listing.description,
        category=listing.category,
        status=listing.status,  # type: ignore[arg-type]
        visibility=listing.visibility,  # type: ignore[arg-type]
        is_public=listing.is_public,
        location=location,
        community=community_ref(listing.community),
        origin="local",
        created_at=listing.created_at,
        updated_at=listing.updated_at,
    )


def remote_listing_to_api(cached: RemoteListing) -> ListingOut:
    """A mirrored listing, shown with its home community and how it reached us."""
    location = (
        Location(lat=cached.latitude, lon=cached.longitude)
        if cached.latitude is not None and cached.longitude is not None
        else None
    )
    visibility: Literal["public", "partners"] = (
        "public" if cached.audience == "public" else "partners"
    )
    return ListingOut(
        id=cached.id,
        ap_id=cached.ap_id,
        kind=cached.kind,  # type: ignore[arg-type]
        title=cached.title,
        description=cached.description,
        category=cached.category,
        status=cached.status,  # type: ignore[arg-type]
        visibility=visibility,
        is_public=visibility == "public",
        location=location,
        community=community_ref(cached.origin_community),
        origin="public" if visibility == "public" else "partner",
        created_at=cached.published_at or cached.received_at,
        updated_at=cached.remote_updated_at or cached.updated_at,
    )


def _visibility_or_422(visibility: str | None, is_public: bool | None) -> str:
    """Resolve the pair or answer 422; mypy sees str, the rule guarantees a Visibility."""
    try:
        return resolve_visibility(visibility, is_public)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc


def _can_edit(member: Member, listing: Listing) -> bool:
    if member.community_id != listing.community_id:
        return False
    return member.is_steward or listing.author_id == member.id


async def create_listing(session: AsyncSession, member: Member, data: ListingCreate) -> Listing:
    visibility = _visibility_or_422(data.visibility, data.is_public)
    listing_id = new_id()
    now = utcnow()
    listing = Listing(
        id=listing_id,
        ap_id=f"{member.community.ap_id}/listings/{listing_id}",
        community_id=member.community_id,
        author_id=member.id,
        kind=data.kind,
        title=data.title,
        description=data.description,
        category=data.category,
        status="active",
        visibility=visibility,
        is_public=visibility == "public",
        latitude=data.location.lat if data.location else None,
        longitude=data.location.lon if data.location else None,
        created_at=now,
        updated_at=now,
    )
    await ListingRepository(session).add(listing)
    listing.community = member.community
    await publish_listing_change(session, listing, None, "create")
    return listing


async def get_visible_listing(session: AsyncSession, member: Member, listing_id: str) -> Listing:
    listing = await ListingRepository(session).get(listing_id)
    if listing is None or not may_view(listing, Viewer(local_community_id=member.community_id)):
        raise NotFound("no such listing")
    return listing


async def update_listing(
    session: AsyncSession, member: Member, listing_id: str, data: ListingUpdate
) -> ListingEvent:
    listing = await get_visible_listing(session, member, listing_id)
    if not _can_edit(member, listing):
        raise Forbidden("only the author or a steward may change this listing")
    previous = listing.visibility
    changes = data.model_dump(exclude_unset=True)
    if "visibility" in changes or "is_public" in changes:
        visibility: str | None = data.visibility
        if visibility is None and data.is_public is not None:
            visibility = "public" if data.is_public else _non_public(previous)
        listing.visibility = _visibility_or_422(visibility, data.is_public)
        listing.is_public = listing.visibility == "public"
    for field in ("kind", "title", "description", "category", "status"):
        if field in changes and changes[field] is not None:
            setattr(listing, field, changes[field])
    if "location" in changes:
        listing.latitude = data.location.lat if data.location else None
        listing.longitude = data.location.lon if data.location else None
    listing.updated_at = utcnow()
    await session.flush()
    await publish_listing_change(session, listing, previous, "update")
    return ListingEvent("update", listing, previous_visibility=previous)


def _non_public(previous: str) -> str:
    """`is_public: false` on a public listing means community; otherwise keep what it was."""
    return "community" if previous == "public" else previous


async def delete_listing(session: AsyncSession, member: Member, listing_id: str) -> ListingEvent:
    listing = await get_visible_listing(session, member, listing_id)
    if not _can_edit(member, listing):
        raise Forbidden("only the author or a steward may delete this listing")
    event = ListingEvent("delete", listing, previous_visibility=listing.visibility)
    await publish_listing_change(session, listing, listing.visibility, "delete")
    await ListingRepository(session).delete(listing)
    return event


async def list_community_listings(
    session: AsyncSession, member: Member, filters: ListingFilters
) -> Sequence[Listing]:
    return await ListingRepository(session).list_for_community(member.community_id, filters)


async def list_listings_for_member(
    session: AsyncSession,
    member: Member,
    filters: ListingFilters,
    *,
    include_public: bool = False,
    include_partners: bool = False,
) -> list[ListingOut]:
    """Own community's listings, plus mirrored ones when asked; newest first."""
    items = [listing_to_api(x) for x in await list_community_listings(session, member, filters)]
    audiences = [a for a, on in (("public", include_public), ("partners", include_partners)) if on]
    if audiences:
        cached = await RemoteListingRepository(session).list_visible(audiences, filters)
        partners = {
            p.remote_community_id
            for p in await PartnershipRepository(session).get_active_for_community(
                member.community_id
            )
        }
        items += [
            remote_listing_to_api(x)
            for x in cached
            # On a node hosting several communities, a partner listing is only
            # for the community in partnership with its origin.
            if x.audience == "public" or x.origin_community_id in partners
        ]
        items.sort(key=lambda item: item.created_at, reverse=True)
    return items


def may_edit(member: Member, listing: Listing) -> bool:
    """The edit rule, public so that pages can offer (or refuse) a form before it is sent."""
    return _can_edit(member, listing)
