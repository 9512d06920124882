"""Federation health for stewards: who we talk to, what is queued, what is blocked.

Stewards may look; changing what is node-wide (blocks, retries) is the node
operator's, since every community on the node shares it.
"""

from __future__ import annotations

from pydantic import BaseModel

from node.api.paging import PageQuery, decode_cursor, page_of
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import BlockList, BlockOut, BlockRequest, PeerHealth, PeerHealthList
from node.services import federation as service
from storage.models import utcnow
from storage.paging import Position


def _after(keys: list[str], cursor: str | None, limit: int) -> list[str]:
    """Keyset paging over names in order: those after the cursor's, one more than `limit`."""
    position = decode_cursor(cursor)
    start = str(position.sort) if position is not None else None
    return [key for key in keys if start is None or key > start][: limit + 1]


def _page(keys: list[str], cursor: str | None, limit: int) -> tuple[list[str], str | None]:
    return page_of(_after(keys, cursor, limit), limit, lambda key: Position(key, key))


def peer_to_api(peer: service.PeerStatus) -> PeerHealth:
    return PeerHealth.model_validate(peer, from_attributes=True)


@api.route(
    "GET",
    "/federation/peers",
    summary="Delivery health per remote host",
    tag="federation",
    auth="steward",
    query=PageQuery,
    response=PeerHealthList,
    errors=(400, 401, 403, 422),
)
async def list_peers(call: ApiCall[None, PageQuery]) -> PeerHealthList:
    """Every host we deliver to or know communities on, by name, paged."""
    peers = {peer.host: peer for peer in await service.peer_hosts(call.session)}
    hosts, after = _page(sorted(peers), call.query.cursor, call.query.limit)
    return PeerHealthList(items=[peer_to_api(peers[host]) for host in hosts], next=after)


class RetryAccepted(BaseModel):
    host: str
    queued: int


@api.route(
    "POST",
    "/federation/peers/{host}/retry",
    summary="Attempt queued deliveries to a host now",
    tag="federation",
    auth="operator",
    status=202,
    response=RetryAccepted,
    errors=(401, 403, 404),
)
async def retry_peer(call: ApiCall[None, None]) -> RetryAccepted:
    host = call.request.match_info["host"].lower()
    count = await service.retry_host(call.session, call.me, host)
    return RetryAccepted(host=host, queued=count)


@api.route(
    "POST",
    "/federation/blocks",
    summary="Block a domain",
    tag="federation",
    auth="operator",
    status=201,
    body=BlockRequest,
    response=BlockOut,
    errors=(401, 403, 422),
)
async def add_block(call: ApiCall[BlockRequest, None]) -> BlockOut:
    domain = await service.block_domain(call.session, call.me, call.body.domain, call.body.reason)
    return BlockOut(domain=domain, created_at=utcnow(), reason=call.body.reason.strip())


@api.route(
    "GET",
    "/federation/blocks",
    summary="Blocked domains",
    tag="federation",
    auth="steward",
    query=PageQuery,
    response=BlockList,
    errors=(400, 401, 403, 422),
)
async def list_blocks(call: ApiCall[None, PageQuery]) -> BlockList:
    blocks = {b.domain: b for b in await service.blocks(call.session)}
    domains, after = _page(sorted(blocks), call.query.cursor, call.query.limit)
    items = [
        BlockOut(domain=d, created_at=blocks[d].created_at, reason=blocks[d].reason)
        for d in domains
    ]
    return BlockList(items=items, next=after)


@api.route(
    "DELETE",
    "/federation/blocks/{domain}",
    summary="Unblock a domain",
    tag="federation",
    auth="operator",
    status=204,
    errors=(401, 403, 404),
)
async def remove_block(call: ApiCall[None, None]) -> None:
    await service.unblock_domain(call.session, call.me, call.request.match_info["domain"])
