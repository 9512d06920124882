"""Discovery pages for members: browse listings across the network, and the communities
this node knows, each with a map over the same results.

Both are GET forms whose filters stay in the URL (a search can be bookmarked
or shared), paged with the service's cursor. Distances are measured from a
point the member typed or picked on the map, or else from their own
community's location. Everything shown comes from `node.services.discovery`,
which reads only this node's cache: no page waits on another node.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.paging import decode_cursor, encode_cursor
from node.appkeys import CONFIG
from node.config import NodeConfig
from node.domain.listings import Place
from node.services import categories, discovery
from node.web.discovery_forms import (
    ORIGINS,
    SORTS,
    BrowseForm,
    CommunitiesForm,
    PlaceFilter,
)
from node.web.guards import Page, member_page
from storage.models import Community
from storage.paging import Position

routes = web.RouteTableDef()
PAGE_SIZE = 30
COMMUNITY_CHOICES = 200  # the community filter's menu; any handle can still be typed in the URL


def map_tiles(config: NodeConfig) -> dict[str, str]:
    return {
        "url": config.map_tile_url,
        "attribution": config.map_tile_attribution,
        "attribution_url": config.map_tile_attribution_url,
    }


def home_point(community: Community) -> Place | None:
    if community.latitude is None or community.longitude is None:
        return None
    return Place(community.latitude, community.longitude)


def _next_url(page: Page, after: Position | None) -> str | None:
    """The same URL, filters and all, with the cursor of the following page."""
    if after is None:
        return None
    url = page.request.rel_url.without_query_params("cursor")
    return str(url.update_query(cursor=encode_cursor(after)))


def _place_context(page: Page, place: PlaceFilter, point: Place | None) -> dict[str, Any]:
    home = home_point(page.member.community)
    return {
        "tiles": map_tiles(page.request.app[CONFIG]),
        "place": place,
        "point": point,
        "point_is_home": point is not None and not place.lat,
        "home": home,
        "paged": "cursor" in page.request.query,
        "first_url": str(page.request.rel_url.without_query_params("cursor")),
    }


@routes.get("/network", name="browse_network")
@member_page
async def browse(page: Page) -> web.StreamResponse:
    community = page.member.community
    form = BrowseForm.from_query(page.request.query)
    after = decode_cursor(page.request.query.get("cursor"))
    query, point = form.to_query(home_point(community), after, PAGE_SIZE)
    items: list[discovery.BrowseItem] = []
    after = None
    if query is not None:
        items, after = await discovery.browse_listings(page.db, community, query)
    choices, _ = await discovery.list_communities(
        page.db, community, discovery.CommunityQuery(limit=COMMUNITY_CHOICES)
    )
    return page.render(
        "discovery/browse.html",
        status=400 if form.errors else 200,
        form=form,
        items=items,
        next_url=_next_url(page, after),
        categories=await categories.list_categories(page.db, community),
        communities=choices,
        sorts=SORTS,
        origins=ORIGINS,
        **_place_context(page, form.place, point),
    )


@routes.get("/network/communities", name="network_communities")
@member_page
async def communities(page: Page) -> web.StreamResponse:
    community = page.member.community
    form = CommunitiesForm.from_query(page.request.query)
    after = decode_cursor(page.request.query.get("cursor"))
    query, point = form.to_query(home_point(community), after, PAGE_SIZE)
    cards: list[discovery.CommunityCard] = []
    after = None
    if query is not None:
        cards, after = await discovery.list_communities(page.db, community, query)
    return page.render(
        "discovery/communities.html",
        status=400 if form.errors else 200,
        form=form,
        cards=cards,
        next_url=_next_url(page, after),
        **_place_context(page, form.place, point),
    )
