"""The listings endpoints."""

from __future__ import annotations

from node.api.converters import changes_from, draft_from, listing_out
from node.api.paging import decode_cursor, encode_cursor
from node.api.router import api
from node.api.routing import ApiCall, base_url
from node.api.schemas import ListingCreate, ListingList, ListingOut, ListingQuery, ListingUpdate
from node.domain.listings import view_of_listing
from node.services import listings as service
from storage.repositories import ListingFilters


@api.route(
    "POST",
    "/listings",
    summary="Post an offer or a need",
    tag="listings",
    status=201,
    body=ListingCreate,
    response=ListingOut,
    errors=(401, 415, 422),
)
async def create_listing(call: ApiCall[ListingCreate, None]) -> ListingOut:
    listing = await service.create_listing(call.session, call.me, draft_from(call.body))
    return listing_out(view_of_listing(listing), base_url(call))


@api.route(
    "GET",
    "/listings",
    summary="List the community's listings",
    tag="listings",
    query=ListingQuery,
    response=ListingList,
    errors=(400, 401, 422),
)
async def list_listings(call: ApiCall[None, ListingQuery]) -> ListingList:
    q = call.query
    filters = ListingFilters(kind=q.kind, category=q.category, status=q.status, q=q.q)
    items, after = await service.list_listings_for_member(
        call.session,
        call.me,
        filters,
        include_public=q.include_public,
        include_partners=q.include_partners,
        after=decode_cursor(q.cursor),
        limit=q.limit,
    )
    return ListingList(
        items=[listing_out(item, base_url(call)) for item in items],
        next=encode_cursor(after) if after is not None else None,
    )


@api.route(
    "GET",
    "/listings/{id}",
    summary="Get one listing",
    tag="listings",
    response=ListingOut,
    errors=(401, 404),
)
async def get_listing(call: ApiCall[None, None]) -> ListingOut:
    listing_id = call.request.match_info["id"]
    listing = await service.get_visible_listing(call.session, call.me, listing_id)
    return listing_out(view_of_listing(listing, call.me.community_id), base_url(call))


@api.route(
    "PATCH",
    "/listings/{id}",
    summary="Change a listing (author or steward)",
    tag="listings",
    body=ListingUpdate,
    response=ListingOut,
    errors=(401, 403, 404, 415, 422),
)
async def update_listing(call: ApiCall[ListingUpdate, None]) -> ListingOut:
    listing = await service.update_listing(
        call.session, call.me, call.request.match_info["id"], changes_from(call.body)
    )
    return listing_out(view_of_listing(listing), base_url(call))


@api.route(
    "DELETE",
    "/listings/{id}",
    summary="Delete a listing (author or steward)",
    tag="listings",
    status=204,
    errors=(401, 403, 404),
)
async def delete_listing(call: ApiCall[None, None]) -> None:
    await service.delete_listing(call.session, call.me, call.request.match_info["id"])
