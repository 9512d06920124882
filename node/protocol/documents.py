"""What other servers read from us: actors, WebFinger, NodeInfo, /ns, outboxes, objects.

Every listing served here went through `listing_to_note()`, which refuses a
community-only listing; the queries below never select one in the first place.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.builders import (
    build_activity,
    build_actor_document,
    ordered_collection,
    ordered_collection_page,
)
from federation.contexts import commons_context_document
from federation.discovery_docs import (
    nodeinfo_document,
    nodeinfo_index,
    parse_acct,
    webfinger_document,
)
from federation.vocab import Place
from node import __version__
from node.appkeys import CONFIG, SESSIONS
from node.domain import urls
from node.domain.conversion import listing_to_note
from node.domain.visibility import may_view
from node.protocol.audience import viewer_for_request
from node.responses import json_response
from storage.models import Community, Listing, Member, utcnow
from storage.paging import Position, position_from_token, position_token
from storage.repositories import CommunityRepository, ListingFilters, ListingRepository
from storage.repositories.follows import FollowRepository
from storage.repositories.keys import RetiredKeyRepository
from storage.repositories.peers import KnownPeerRepository
from storage.states import Kind, ListingStatus, Visibility

AP_CONTENT_TYPE = "application/activity+json"
PAGE_SIZE = 20
AP_MEDIA = ("application/activity+json", "application/ld+json", "application/json")


def wants_activity_json(request: web.Request) -> bool:
    """JSON unless the client plainly asks for a page: a browser's Accept starts with HTML."""
    accept = request.headers.get("Accept", "")
    if not accept or any(media in accept for media in AP_MEDIA):
        return True
    return "text/html" not in accept


def activity_response(document: dict[str, Any], status: int = 200) -> web.Response:
    response = json_response(document, status)
    response.content_type = AP_CONTENT_TYPE
    response.headers["Vary"] = "Accept"
    return response


async def local_community_or_404(session: AsyncSession, slug: str) -> Community:
    community = await CommunityRepository(session).get_local_by_slug(slug)
    if community is None:
        raise web.HTTPNotFound(text="no such community")
    return community


async def public_counts(session: AsyncSession, community: Community) -> tuple[int, int]:
    repo = ListingRepository(session)
    return await repo.count_public(community.id, Kind.OFFER), await repo.count_public(
        community.id, Kind.NEED
    )


async def actor_document(session: AsyncSession, community: Community) -> dict[str, Any]:
    offers, needs = await public_counts(session, community)
    location = (
        Place(community.latitude, community.longitude)
        if community.latitude is not None and community.longitude is not None
        else None
    )
    assert community.public_key_pem is not None
    retired = await RetiredKeyRepository(session).in_grace(community.id, utcnow())
    return build_actor_document(
        actor_id=community.ap_id,
        preferred_username=community.slug,
        name=community.name,
        description=community.description,
        inbox=community.inbox_url or urls.actor_inbox(community.ap_id),
        outbox=community.outbox_url or urls.outbox(community.ap_id),
        followers=community.followers_url or urls.followers(community.ap_id),
        shared_inbox=community.shared_inbox_url or urls.shared_inbox(community.base_url),
        public_key_pem=community.public_key_pem,
        url=community.ap_id,
        location=location,
        public_offer_count=offers,
        public_need_count=needs,
        published=community.created_at,
        discoverable=community.is_discoverable,
        key_id=community.key_id,
        retired_keys=[(key.key_id, key.public_key_pem) for key in retired],
    )


async def actor(request: web.Request) -> web.StreamResponse:
    if not wants_activity_json(request):
        raise web.HTTPFound(f"/communities/{request.match_info['slug']}")
    async with request.app[SESSIONS]() as session:
        community = await local_community_or_404(session, request.match_info["slug"])
        return activity_response(await actor_document(session, community))


async def webfinger(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    resource = request.query.get("resource", "")
    try:
        user, host = parse_acct(resource)
    except ValueError as exc:
        return json_response({"error": {"code": "bad_request", "message": str(exc)}}, 400)
    if host != config.host.lower():
        return json_response({"error": {"code": "not_found", "message": "not our host"}}, 404)
    async with request.app[SESSIONS]() as session:
        community = await CommunityRepository(session).get_local_by_slug(user)
    if community is None:
        return json_response({"error": {"code": "not_found", "message": "no such community"}}, 404)
    document = webfinger_document(f"acct:{user}@{host}", community.ap_id, community.ap_id)
    response = json_response(document)
    response.content_type = "application/jrd+json"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def nodeinfo_links(request: web.Request) -> web.Response:
    return json_response(nodeinfo_index(request.app[CONFIG].base_url))


async def nodeinfo(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        communities = await CommunityRepository(session).list_local()
        entries = []
        for community in communities:
            if not community.is_discoverable:
                continue
            offers, needs = await public_counts(session, community)
            entries.append(
                {
                    "id": community.ap_id,
                    "handle": community.handle,
                    "name": community.name,
                    "publicOfferCount": offers,
                    "publicNeedCount": needs,
                }
            )
        members = (await session.execute(select(func.count()).select_from(Member))).scalar_one()
        posts = (
            await session.execute(
                select(func.count()).select_from(Listing).where(Listing.is_public.is_(True))
            )
        ).scalar_one()
        peers = await KnownPeerRepository(session).published(request.app[CONFIG].base_url)
    document = nodeinfo_document(
        "commons-node",
        __version__,
        int(members),
        int(posts),
        entries,
        open_registrations=False,
        peers=peers,
    )
    response = json_response(document)
    response.content_type = "application/json"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def namespace(_request: web.Request) -> web.Response:
    response = json_response(commons_context_document())
    response.content_type = "application/ld+json"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def create_activity(
    listing: Listing, community: Community, partners: list[str] | None = None
) -> dict[str, Any]:
    """A collection's view of a shared listing; its id is stable per listing."""
    note = listing_to_note(listing, community, partners)
    return build_activity(
        "Create",
        f"{listing.ap_id}#create",
        community.ap_id,
        note,
        to=note["to"],
        cc=note["cc"],
        published=listing.created_at,
    )


def _page_number(request: web.Request) -> int | None:
    raw = request.query.get("page")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise web.HTTPBadRequest(text="page must be a positive integer")
    return int(raw)


async def outbox(request: web.Request) -> web.Response:
    """Public listings only, newest first, `PAGE_SIZE` a page."""
    page = _page_number(request)
    async with request.app[SESSIONS]() as session:
        community = await local_community_or_404(session, request.match_info["slug"])
        repo = ListingRepository(session)
        collection_id = community.outbox_url or urls.outbox(community.ap_id)
        if page is None:
            total = await repo.count_public(community.id, Kind.OFFER) + await repo.count_public(
                community.id, Kind.NEED
            )
            total += await _count_closed_public(session, community)
            document = ordered_collection(
                collection_id, total_items=total, first=f"{collection_id}?page=1"
            )
            return activity_response(document)
        filters = ListingFilters(limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        listings = list(await repo.get_public_listings(community.id, filters))
    more = len(listings) > PAGE_SIZE
    items = [create_activity(listing, community) for listing in listings[:PAGE_SIZE]]
    document = ordered_collection_page(
        f"{collection_id}?page={page}",
        part_of=collection_id,
        ordered_items=items,
        next_page=f"{collection_id}?page={page + 1}" if more else None,
        prev_page=f"{collection_id}?page={page - 1}" if page > 1 else None,
    )
    return activity_response(document)


async def _count_closed_public(session: AsyncSession, community: Community) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Listing)
        .where(
            Listing.community_id == community.id,
            Listing.is_public.is_(True),
            Listing.status != ListingStatus.ACTIVE,
        )
    )
    return int(result.scalar_one())


PARTNER_PAGE_SIZE = 50
"""Items a partner collection page holds: a page of the longest listings stays well
under the 2 MiB a fetch may read (`HttpLimits.max_response_bytes`)."""


def _partner_page_position(request: web.Request) -> Position | None:
    raw = request.query.get("after")
    if raw is None:
        return None
    try:
        return position_from_token(raw[:512])
    except ValueError as exc:
        raise web.HTTPBadRequest(text="after is not a page this server gave out") from exc


def _partner_page_url(collection_id: str, after: Position | None) -> str:
    if after is None:
        return f"{collection_id}?page=true"
    return f"{collection_id}?page=true&after={position_token(after)}"


async def partner_listings(request: web.Request) -> web.Response:
    """Partner-only listings, served only to a signed fetch by an active partner
    (everyone else gets 404 for the collection and every page, as if it did not
    exist). Each item names only the partner asking, never the others.

    Paged newest first by (created_at, id) with the position in the link, so a
    walk sees each listing once even while listings are added.
    """
    async with request.app[SESSIONS]() as session:
        community = await local_community_or_404(session, request.match_info["slug"])
        viewer = await viewer_for_request(request, session, community)
        if not viewer.is_active_partner:
            raise web.HTTPNotFound(text="no such collection")
        position = _partner_page_position(request)
        repo = ListingRepository(session)
        collection_id = urls.partner_collection(community.ap_id)
        if "page" not in request.query and position is None:
            total = await repo.count_partners_only(community.id)
            first = _partner_page_url(collection_id, None)
            return activity_response(
                ordered_collection(collection_id, total_items=total, first=first)
            )
        rows = await repo.page_partners_only(community.id, position, PARTNER_PAGE_SIZE)
        shared = list(rows[:PARTNER_PAGE_SIZE])
        asking = [viewer.remote_actor] if viewer.remote_actor else []
        items = [create_activity(listing, community, asking) for listing in shared]
    next_page = None
    if len(rows) > PARTNER_PAGE_SIZE:
        last = shared[-1]
        next_page = _partner_page_url(collection_id, Position(last.created_at, last.id))
    document = ordered_collection_page(
        _partner_page_url(collection_id, position),
        part_of=collection_id,
        ordered_items=items,
        next_page=next_page,
    )
    return activity_response(document)


async def followers(request: web.Request) -> web.Response:
    """Only the count: who follows a community is nobody else's business."""
    async with request.app[SESSIONS]() as session:
        community = await local_community_or_404(session, request.match_info["slug"])
        count = len(await FollowRepository(session).followers(community.id))
    collection_id = community.followers_url or urls.followers(community.ap_id)
    return activity_response(ordered_collection(collection_id, total_items=count))


async def listing_object(request: web.Request) -> web.StreamResponse:
    """A listing by its AP id: the Note to those who may see it, 404 to everyone else.
    A partner-only one names only the partner asking."""
    async with request.app[SESSIONS]() as session:
        community = await local_community_or_404(session, request.match_info["slug"])
        listing = await ListingRepository(session).get(request.match_info["listing_id"])
        viewer = await viewer_for_request(request, session, community)
        if listing is None or listing.community_id != community.id:
            raise web.HTTPNotFound(text="no such listing")
        if not may_view(listing, viewer):
            raise web.HTTPNotFound(text="no such listing")
        if not wants_activity_json(request):
            raise web.HTTPFound(f"/communities/{community.slug}#listing-{listing.id}")
        asking = [viewer.remote_actor] if viewer.remote_actor else []
        partners = asking if listing.visibility == Visibility.PARTNERS else []
        return activity_response(listing_to_note(listing, community, partners))


def setup_document_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo_links)
    app.router.add_get("/nodeinfo/2.1", nodeinfo)
    app.router.add_get("/ns", namespace)
    app.router.add_get("/c/{slug}", actor)
    app.router.add_get("/c/{slug}/outbox", outbox)
    app.router.add_get("/c/{slug}/followers", followers)
    app.router.add_get("/c/{slug}/partner-listings", partner_listings)
    app.router.add_get("/c/{slug}/listings/{listing_id}", listing_object)
