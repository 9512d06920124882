"""A community's public page: what anyone on the web may know about it.

Browsers that open a community's actor URL (`/c/{slug}`) land here, so this
is how other communities and their stewards first see it. It shows public
listings only, whoever is signed in: a member looking at it sees exactly what
a stranger sees, and a community or partner listing never appears.
"""

from __future__ import annotations

from aiohttp import web

from node.domain.visibility import Viewer, may_view
from node.errors import NotFound
from node.web.guards import Page, public_page
from storage.repositories import CommunityRepository, ListingFilters, ListingRepository
from storage.states import Kind, ListingStatus

routes = web.RouteTableDef()
SLUG = "{slug:[a-z0-9][a-z0-9_-]{0,62}}"
SHOWN = 100


@routes.get(f"/communities/{SLUG}", name="community")
@public_page
async def community_page(page: Page) -> web.StreamResponse:
    community = await CommunityRepository(page.db).get_local_by_slug(
        page.request.match_info["slug"]
    )
    if community is None:
        raise NotFound("There is no community with that name on this node.")
    repo = ListingRepository(page.db)
    found = await repo.get_public_listings(
        community.id, ListingFilters(status=ListingStatus.ACTIVE, limit=SHOWN)
    )
    listings = [listing for listing in found if may_view(listing, Viewer.anonymous())]
    return page.render(
        "community/public.html",
        community=community,
        listings=listings,
        offer_count=await repo.count_public(community.id, Kind.OFFER),
        need_count=await repo.count_public(community.id, Kind.NEED),
        is_own=page.session is not None and page.member.community_id == community.id,
    )
