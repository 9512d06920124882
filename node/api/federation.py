"""Federation health for stewards: who we talk to, what is queued, what is blocked.

Stewards may look; changing what is node-wide (blocks, retries) is the node
operator's, since every community on the node shares it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select

from node.api.paging import PageQuery, decode_cursor, page_of
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import BlockList, BlockOut, BlockRequest, PeerHealth, PeerHealthList
from node.errors import NotFound, ValidationFailed
from node.protocol.publishing import WAKE_DELIVERY
from storage.models import Community, utcnow
from storage.paging import Position
from storage.repositories.actors import BlockRepository, host_is_blocked, normalize_domain
from storage.repositories.deliveries import DeliveryRepository, HostSummary

UNREACHABLE_AFTER = 6
MAX_DOMAIN_LENGTH = 255  # the blocked_domains column


PeerState = Literal["ok", "backing_off", "unreachable", "blocked"]


def _after(keys: list[str], cursor: str | None, limit: int) -> list[str]:
    """Keyset paging over names in order: those after the cursor's, one more than `limit`."""
    position = decode_cursor(cursor)
    start = str(position.sort) if position is not None else None
    return [key for key in keys if start is None or key > start][: limit + 1]


def _page(keys: list[str], cursor: str | None, limit: int) -> tuple[list[str], str | None]:
    return page_of(_after(keys, cursor, limit), limit, lambda key: Position(key, key))


def _state(summary: HostSummary | None, blocked: bool) -> PeerState:
    if blocked:
        return "blocked"
    if summary is None or summary.consecutive_failures == 0:
        return "ok"
    if summary.consecutive_failures >= UNREACHABLE_AFTER:
        return "unreachable"
    return "backing_off"


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
    summaries = {s.host: s for s in await DeliveryRepository(call.session).host_summaries()}
    blocked = await BlockRepository(call.session).domains()
    remote = await call.session.execute(
        select(Community).where(Community.is_local.is_(False), Community.actor_type == "Group")
    )
    handles: dict[str, list[str]] = defaultdict(list)
    for community in remote.scalars():
        handles[community.host].append(community.handle)
    hosts, after = _page(sorted(set(summaries) | set(handles)), call.query.cursor, call.query.limit)
    items = []
    for host in hosts:
        summary = summaries.get(host)
        items.append(
            PeerHealth(
                host=host,
                communities=sorted(handles.get(host, [])),
                queued=summary.queued if summary else 0,
                cancelled=summary.cancelled if summary else 0,
                failures=summary.consecutive_failures if summary else 0,
                last_success_at=summary.last_success_at if summary else None,
                next_attempt_at=summary.next_attempt_at if summary else None,
                state=_state(summary, host_is_blocked(blocked, host)),
            )
        )
    return PeerHealthList(items=items, next=after)


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
    deliveries = DeliveryRepository(call.session)
    if host not in {summary.host for summary in await deliveries.host_summaries()}:
        raise NotFound(f"no deliveries to {host}")
    count = await deliveries.retry_host(host, utcnow())
    call.session.info[WAKE_DELIVERY] = True
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
    try:
        normal = normalize_domain(call.body.domain)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    if len(normal) > MAX_DOMAIN_LENGTH:  # IPv6 gains brackets when normalised
        raise ValidationFailed(f"domain is longer than {MAX_DOMAIN_LENGTH} characters")
    domain = await BlockRepository(call.session).add(normal)
    # Cancelled, not paused: lifting the block later must not release this backlog.
    await DeliveryRepository(call.session).cancel_blocked()
    return BlockOut(domain=domain, created_at=utcnow())


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
    blocks = {b.domain: b for b in await BlockRepository(call.session).list()}
    domains, after = _page(sorted(blocks), call.query.cursor, call.query.limit)
    items = [BlockOut(domain=d, created_at=blocks[d].created_at) for d in domains]
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
    try:
        domain = normalize_domain(call.request.match_info["domain"])
    except ValueError as exc:
        raise NotFound(str(exc)) from exc
    if not await BlockRepository(call.session).remove(domain):
        raise NotFound(f"{domain} is not blocked")
