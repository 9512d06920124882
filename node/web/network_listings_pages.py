"""The listing list widened beyond the community: "+ Partners" and "+ Public network".

`/listings` shows our own community's listings; this page shows the same list
with what partners share (and, one step wider, public listings from the rest
of the network) mixed in, newest first, using the same template and filters.
Which mirrored listings a member may see is decided by
`list_listings_for_member`, the function behind the API's `include_partners`
and `include_public`, so the page and the API cannot disagree.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from node.web.guards import Page, member_page
from node.web.listings_pages import render_listing_index

routes = web.RouteTableDef()
Scope = Literal["partners", "public"]


def _scope(page: Page) -> Scope:
    return "public" if page.request.query.get("scope") == "public" else "partners"


@routes.get("/listings/network", name="network_listings")
@member_page
async def network_listings(page: Page) -> web.StreamResponse:
    scope = _scope(page)
    return await render_listing_index(
        page, include_partners=True, include_public=scope == "public", scope=scope
    )
