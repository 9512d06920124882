"""Discovery endpoints: learning about other nodes and their communities."""

from __future__ import annotations

from urllib.parse import urlsplit

from node.api.converters import community_out, listing_fields
from node.api.paging import decode_cursor, encode_cursor
from node.api.router import api
from node.api.routing import ApiCall, base_url
from node.api.schemas import (
    BrowseList,
    BrowseListing,
    CommunityCardList,
    CommunityCardOut,
    InstancePeers,
    Location,
    PeerLearned,
    PeerRequest,
)
from node.api.schemas import BrowseQuery as BrowseQueryIn
from node.api.schemas import CommunityQuery as CommunityQueryIn
from node.appkeys import CONFIG
from node.domain.listings import Place
from node.errors import BadRequest, ValidationFailed
from node.protocol.context import FederationContext
from node.protocol.peers import PeerUnavailable, learn_peer, normalize_peer_url
from node.services import discovery
from storage.repositories.peers import KnownPeerRepository
from storage.states import Kind, Origin, PartnershipState


@api.route(
    "POST",
    "/discovery/peers",
    summary="Learn the communities of another node and follow them",
    tag="discovery",
    auth="steward",
    status=201,
    body=PeerRequest,
    response=PeerLearned,
    errors=(400, 401, 403, 422),
)
async def add_peer(call: ApiCall[PeerRequest, None]) -> PeerLearned:
    try:
        url = normalize_peer_url(call.body.url)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    ctx = FederationContext.from_app(call.request.app)
    try:
        learned = await learn_peer(ctx, url, call.me.community)
    except PeerUnavailable as exc:
        raise BadRequest(str(exc)) from exc
    return PeerLearned(
        url=learned.base_url, communities=[community_out(c) for c in learned.communities]
    )


def _location(place: Place | None) -> Location | None:
    return Location(lat=place.lat, lon=place.lon) if place is not None else None


@api.route(
    "GET",
    "/discovery/communities",
    summary="Communities this node knows, nearest first when a point is given",
    tag="discovery",
    query=CommunityQueryIn,
    response=CommunityCardList,
    errors=(400, 401, 422),
)
async def list_communities(call: ApiCall[None, CommunityQueryIn]) -> CommunityCardList:
    q = call.query
    cards, after = await discovery.list_communities(
        call.session,
        call.me.community,
        discovery.CommunityQuery(
            q=q.q,
            lat=q.lat,
            lon=q.lon,
            radius_km=q.radius_km,
            limit=q.limit,
            after=decode_cursor(q.cursor),
        ),
    )
    items = [
        CommunityCardOut(
            id=card.id,
            handle=card.handle,
            name=card.name,
            description=card.description,
            location=_location(card.location),
            public_offer_count=card.public_offer_count,
            public_need_count=card.public_need_count,
            distance_km=card.distance_km,
            partnership=PartnershipState(card.partnership) if card.partnership else None,
            is_local=card.is_local,
        )
        for card in cards
    ]
    return CommunityCardList(items=items, next=encode_cursor(after) if after else None)


@api.route(
    "GET",
    "/discovery/browse",
    summary="Listings across the network that the caller may see",
    tag="discovery",
    query=BrowseQueryIn,
    response=BrowseList,
    errors=(400, 401, 422),
)
async def browse(call: ApiCall[None, BrowseQueryIn]) -> BrowseList:
    q = call.query
    items, after = await discovery.browse_listings(
        call.session,
        call.me.community,
        discovery.BrowseQuery(
            q=q.q,
            kind=Kind(q.kind) if q.kind else None,
            category=q.category or None,
            community=q.community or None,
            origin=Origin(q.origin) if q.origin else None,
            lat=q.lat,
            lon=q.lon,
            radius_km=q.radius_km,
            sort=q.sort.value,
            limit=q.limit,
            after=decode_cursor(q.cursor),
        ),
    )
    url = base_url(call)
    out = [
        BrowseListing(**listing_fields(item.listing, url), distance_km=item.distance_km)
        for item in items
    ]
    return BrowseList(items=out, next=encode_cursor(after) if after else None)


@api.route(
    "GET",
    "/instance/peers",
    summary="The nodes this node knows, as host names (Mastodon's shape)",
    tag="discovery",
    auth="none",
    response=InstancePeers,
)
async def instance_peers(call: ApiCall[None, None]) -> InstancePeers:
    config = call.request.app[CONFIG]
    urls = await KnownPeerRepository(call.session).published(config.base_url)
    return InstancePeers([urlsplit(url).netloc for url in urls])
