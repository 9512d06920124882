"""The listing list widened beyond the community: "+ Partners" and "+ Public network".

`/listings` shows our own community's listings; this page shows the same list
with what partners share (and, one step wider, public listings from the rest
of the network) mixed in, newest first, using the same template and filters.
Which mirrored listings a member may see is decided by
`list_listings_for_member`, the function behind the API's `include_partners`
and `include_public`, so the page and the API cannot disagree.

Our own listings are rendered from their rows, as on `/listings`, because the
card names the member who posted them and the API shape does not carry that.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from node.api.schemas import ListingOut
from node.services import listings as service
from node.web.guards import Page, member_page
from node.web.listings_pages import CATEGORY_SUGGESTIONS, _filters
from storage.models import Listing

routes = web.RouteTableDef()
Scope = Literal["partners", "public"]


def _scope(page: Page) -> Scope:
    return "public" if page.request.query.get("scope") == "public" else "partners"


@routes.get("/listings/network", name="network_listings")
@member_page
async def network_listings(page: Page) -> web.StreamResponse:
    filters, chosen = _filters(page)
    scope = _scope(page)
    everything = await service.list_listings_for_member(
        page.db, page.member, filters, include_partners=True, include_public=scope == "public"
    )
    own = {x.id: x for x in await service.list_community_listings(page.db, page.member, filters)}
    listings: list[Listing | ListingOut] = [
        own.get(item.id, item) if item.origin == "local" else item for item in everything
    ]
    return page.render(
        "listings/index.html",
        listings=listings,
        chosen=chosen,
        filtered=any(chosen.values()),
        categories=CATEGORY_SUGGESTIONS,
        scope=scope,
    )
