"""Federation health as stewards see it: each peer host, what is queued for it,
how its deliveries fare, what its clock says; and the node's domain blocks.

Shared by the JSON API and the federation page, so both say the same thing.
Blocks and retries are node-wide: only the node's operator may change them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.errors import Forbidden, NotFound, ValidationFailed
from node.protocol.publishing import WAKE_DELIVERY
from storage.models import BlockedDomain, Community, Member, utcnow
from storage.repositories.actors import BlockRepository, host_is_blocked, normalize_domain
from storage.repositories.deliveries import DeliveryRepository, HostSummary

UNREACHABLE_AFTER = 6
"""Consecutive failed rounds after which a host is called unreachable, not backing off."""
MAX_DOMAIN_LENGTH = 255  # the blocked_domains column
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class PeerStatus:
    """One remote host: `state` is ok | backing_off | unreachable | blocked."""

    host: str
    communities: list[str]
    queued: int
    failed: int
    cancelled: int
    failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    next_attempt_at: datetime | None
    state: str
    clock_skew_seconds: float | None
    clock_skew_at: datetime | None


def peer_state(summary: HostSummary | None, blocked: bool) -> str:
    if blocked:
        return "blocked"
    if summary is None or summary.consecutive_failures == 0:
        return "ok"
    if summary.consecutive_failures >= UNREACHABLE_AFTER:
        return "unreachable"
    return "backing_off"


def _status(
    host: str, handles: list[str], summary: HostSummary | None, blocked: bool
) -> PeerStatus:
    return PeerStatus(
        host=host,
        communities=sorted(handles),
        queued=summary.queued if summary else 0,
        failed=summary.failed if summary else 0,
        cancelled=summary.cancelled if summary else 0,
        failures=summary.consecutive_failures if summary else 0,
        last_success_at=summary.last_success_at if summary else None,
        last_failure_at=summary.last_failure_at if summary else None,
        last_error=summary.last_error if summary else None,
        next_attempt_at=summary.next_attempt_at if summary else None,
        state=peer_state(summary, blocked),
        clock_skew_seconds=summary.clock_skew_seconds if summary else None,
        clock_skew_at=summary.clock_skew_at if summary else None,
    )


async def peer_hosts(session: AsyncSession) -> list[PeerStatus]:
    """Every host we deliver to, hear from or know communities on, by name."""
    summaries = {s.host: s for s in await DeliveryRepository(session).host_summaries()}
    blocked = await BlockRepository(session).domains()
    remote = await session.execute(
        select(Community).where(Community.is_local.is_(False), Community.actor_type == "Group")
    )
    handles: dict[str, list[str]] = defaultdict(list)
    for community in remote.scalars():
        handles[community.host].append(community.handle)
    return [
        _status(host, handles.get(host, []), summaries.get(host), host_is_blocked(blocked, host))
        for host in sorted(set(summaries) | set(handles))
    ]


def require_operator(member: Member) -> None:
    if not member.is_operator:
        raise Forbidden("only the node's operator may change node-wide settings")


async def retry_host(session: AsyncSession, member: Member, host: str) -> int:
    """Make what is queued for `host` due now and forget its backoff; the commit
    wakes the delivery worker. Returns how many deliveries were rescheduled."""
    require_operator(member)
    host = host.strip().lower()
    deliveries = DeliveryRepository(session)
    if host not in {summary.host for summary in await deliveries.host_summaries()}:
        raise NotFound(f"no deliveries to {host}")
    count = await deliveries.retry_host(host, utcnow())
    session.info[WAKE_DELIVERY] = True
    return count


def block_domain_name(domain: str) -> str:
    """The domain as a block stores it; a clear 422 when it is not one."""
    try:
        normal = normalize_domain(domain)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    if len(normal) > MAX_DOMAIN_LENGTH:  # IPv6 gains brackets when normalised
        raise ValidationFailed(f"domain is longer than {MAX_DOMAIN_LENGTH} characters")
    return normal


async def block_domain(session: AsyncSession, member: Member, domain: str, reason: str = "") -> str:
    require_operator(member)
    normal = block_domain_name(domain)
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    stored = await BlockRepository(session).add(normal, reason)
    # Cancelled, not paused: lifting the block later must not release this backlog.
    await DeliveryRepository(session).cancel_blocked()
    return stored


async def unblock_domain(session: AsyncSession, member: Member, domain: str) -> str:
    require_operator(member)
    try:
        normal = normalize_domain(domain)
    except ValueError as exc:
        raise NotFound(str(exc)) from exc
    if not await BlockRepository(session).remove(normal):
        raise NotFound(f"{normal} is not blocked")
    return normal


async def blocks(session: AsyncSession) -> Sequence[BlockedDomain]:
    return await BlockRepository(session).list()
