"""Federation health for stewards: who we talk to, what is queued, what is blocked.

Stewards may look; changing what is node-wide (blocks, retries) is the node
operator's, since every community on the node shares it.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel
from sqlalchemy import select

from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import BlockList, BlockOut, BlockRequest, PeerHealth, PeerHealthList
from node.errors import NotFound, ValidationFailed
from node.protocol.publishing import WAKE_DELIVERY
from storage.models import Community, utcnow
from storage.repositories.actors import BlockRepository, host_is_blocked, normalize_domain
from storage.repositories.deliveries import DeliveryRepository, HostSummary

UNREACHABLE_AFTER = 6
MAX_DOMAIN_LENGTH = 255  # the blocked_domains column


def _state(summary: HostSummary | None, blocked: bool) -> str:
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
    response=PeerHealthList,
    errors=(401, 403),
)
async def list_peers(call: ApiCall[None, None]) -> PeerHealthList:
    summaries = {s.host: s for s in await DeliveryRepository(call.session).host_summaries()}
    blocked = await BlockRepository(call.session).domains()
    remote = await call.session.execute(
        select(Community).where(Community.is_local.is_(False), Community.actor_type == "Group")
    )
    handles: dict[str, list[str]] = defaultdict(list)
    for community in remote.scalars():
        handles[community.host].append(community.handle)
    items = []
    for host in sorted(set(summaries) | set(handles)):
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
                state=_state(summary, host_is_blocked(blocked, host)),  # type: ignore[arg-type]
            )
        )
    return PeerHealthList(items=items)


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
    response=BlockList,
    errors=(401, 403),
)
async def list_blocks(call: ApiCall[None, None]) -> BlockList:
    blocks = await BlockRepository(call.session).list()
    return BlockList(items=[BlockOut(domain=b.domain, created_at=b.created_at) for b in blocks])


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
