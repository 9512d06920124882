"""The old "listings with partners / the public network" page, now `/network`.

`/network` (discovery) lists, searches and pages everything a member may see
across the network; this address stays only so that old links and bookmarks
land there, with the filters they carried.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

routes = web.RouteTableDef()
KEPT = ("q", "kind", "category")


@routes.get("/listings/network", name="network_listings")
async def network_listings(request: web.Request) -> web.StreamResponse:
    """301 to `/network`: "+ Partners" becomes the partner filter, "+ Public" no filter."""
    query = {name: request.query[name] for name in KEPT if request.query.get(name)}
    if request.query.get("scope") != "public":
        query["origin"] = "partner"
    raise web.HTTPMovedPermanently(location=str(URL("/network").with_query(query)))
