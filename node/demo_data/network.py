"""The demo's federation, made the way stewards and members make it: through the services.

Every community follows every other's public listings, the first pair become
partners, and another proposal waits for its steward. Exchanges across
communities are requested, answered and completed by the members themselves;
the nodes carry each step to the other over signed HTTP, and only then are
both copies dated back to when the plan says they happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import CONFIG, SESSIONS
from node.demo_data.local import times_of
from node.demo_data.plan import ExchangeSpec, Plan
from node.protocol.context import FederationContext
from node.protocol.peers import PeerUnavailable, learn_peer
from node.services import exchanges, partnerships
from storage.models import Community, Exchange, Member, Notification, RemoteListing
from storage.repositories import CommunityRepository, MemberRepository
from storage.repositories.exchanges import ExchangeRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.states import ListingStatus, PartnershipState

log = logging.getLogger(__name__)

ARRIVAL_SECONDS = 60.0


@dataclass
class LiveNode:
    slug: str
    app: web.Application
    steward: str  # usernames of the logins
    member: str

    @property
    def base_url(self) -> str:
        return self.app[CONFIG].base_url

    @property
    def handle(self) -> str:
        return f"{self.slug}@{self.app[CONFIG].host}"


async def community(session: AsyncSession, node: LiveNode) -> Community:
    found = await CommunityRepository(session).get_local_by_slug(node.slug)
    if found is None:
        raise LookupError(f"no community {node.slug!r} on {node.base_url}")
    return found


async def member(session: AsyncSession, node: LiveNode, username: str) -> Member:
    local = await community(session, node)
    found = await MemberRepository(session).get_by_username(local.id, username)
    if found is None:
        raise LookupError(f"no member {username!r} in {node.slug}")
    return found


async def until(check: Callable[[], Awaitable[bool]], what: str) -> bool:
    """Poll `check` until it holds; after ARRIVAL_SECONDS say what is missing and go on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ARRIVAL_SECONDS
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    log.warning("demo: %s did not happen within %.0f s; going on without it", what, ARRIVAL_SECONDS)
    return False


async def follow_everyone(nodes: Sequence[LiveNode]) -> None:
    """Each community learns every other node and follows its public listings."""

    async def learn(node: LiveNode) -> None:
        ctx = FederationContext.from_app(node.app)
        async with node.app[SESSIONS]() as session:
            local = await community(session, node)
        for other in nodes:
            if other is not node:
                try:
                    await learn_peer(ctx, other.base_url, local)
                except PeerUnavailable as exc:
                    log.warning("demo: %s could not learn %s: %s", node.slug, other.slug, exc)

    await asyncio.gather(*(learn(node) for node in nodes))


async def _pending_at(node: LiveNode, proposer: LiveNode) -> str | None:
    async with node.app[SESSIONS]() as session:
        local = await community(session, node)
        for partnership in await PartnershipRepository(session).list_for_community(local.id):
            if (
                partnership.state == PartnershipState.PENDING
                and partnership.remote_community.host == proposer.app[CONFIG].host
            ):
                return partnership.id
    return None


async def propose(proposer: LiveNode, target: LiveNode, message: str) -> str | None:
    """The proposer's steward asks; returns the proposal's id at the target once it arrived."""
    ctx = FederationContext.from_app(proposer.app)
    async with proposer.app[SESSIONS]() as session:
        steward = await member(session, proposer, proposer.steward)
        await partnerships.propose(ctx, session, steward, target.handle, message)
        await session.commit()
    found: list[str] = []

    async def arrived() -> bool:
        pending = await _pending_at(target, proposer)
        found.extend([pending] if pending else [])
        return pending is not None

    await until(arrived, f"the proposal from {proposer.slug} to {target.slug}")
    return found[0] if found else None


async def partner(a: LiveNode, b: LiveNode, message: str) -> None:
    pending = await propose(a, b, message)
    if pending is None:
        return
    async with b.app[SESSIONS]() as session:
        steward = await member(session, b, b.steward)
        await partnerships.approve(session, steward, pending)
        await session.commit()


async def date_partnership(
    node: LiveNode, other: LiveNode, proposed: datetime, answered: datetime
) -> None:
    """The node's partnership (or proposal) with `other`, as if made when the plan says."""
    async with node.app[SESSIONS]() as session:
        local = await community(session, node)
        for partnership in await PartnershipRepository(session).list_for_community(local.id):
            if partnership.remote_community.host != other.app[CONFIG].host:
                continue
            partnership.created_at = proposed
            active = partnership.state == PartnershipState.ACTIVE
            partnership.updated_at = answered if active else proposed
            await session.execute(
                update(Notification)
                .where(Notification.partnership_id == partnership.id)
                .values(created_at=proposed)
            )
            if partnership.approved_at is not None:
                partnership.approved_at = answered
        await session.commit()


async def mirrored(node: LiveNode) -> int:
    """Active listings of other communities in the node's cache."""
    async with node.app[SESSIONS]() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(RemoteListing)
            .where(RemoteListing.is_tombstoned.is_(False))
            .where(RemoteListing.status == ListingStatus.ACTIVE)
        )
    return int(count or 0)


async def await_mirrors(nodes: Sequence[LiveNode], expected: dict[str, int]) -> None:
    """Until each node holds what the others share with it (read over HTTP by its jobs)."""
    for node in nodes:

        async def full(node: LiveNode = node) -> bool:
            return await mirrored(node) >= expected[node.slug]

        await until(full, f"{node.slug} receiving {expected[node.slug]} listings of the others")


@dataclass
class _Crossing:
    spec: ExchangeSpec
    requester: LiveNode
    owner: LiveNode
    author: str
    agreement_id: str = ""


async def _status(node: LiveNode, agreement_ids: Sequence[str]) -> dict[str, str]:
    async with node.app[SESSIONS]() as session:
        rows = await session.execute(
            select(Exchange.agreement_id, Exchange.status).where(
                Exchange.agreement_id.in_(agreement_ids)
            )
        )
        return {agreement: status for agreement, status in rows.all()}


async def _all_at(crossings: Sequence[_Crossing], side: str, statuses: set[str], what: str) -> None:
    """Until every crossing has one of `statuses` on the given side (one query a node a poll)."""
    by_node: dict[int, tuple[LiveNode, list[str]]] = {}
    for crossing in crossings:
        node = crossing.owner if side == "owner" else crossing.requester
        by_node.setdefault(id(node), (node, []))[1].append(crossing.agreement_id)

    async def there() -> bool:
        for node, agreement_ids in by_node.values():
            found = await _status(node, agreement_ids)
            if any(found.get(agreement) not in statuses for agreement in agreement_ids):
                return False
        return True

    if crossings:
        await until(there, what)


def _by_node(crossings: Sequence[_Crossing], side: str) -> list[tuple[LiveNode, list[_Crossing]]]:
    groups: dict[int, tuple[LiveNode, list[_Crossing]]] = {}
    for crossing in crossings:
        node = crossing.owner if side == "owner" else crossing.requester
        groups.setdefault(id(node), (node, []))[1].append(crossing)
    return list(groups.values())


async def _act(
    crossings: Sequence[_Crossing],
    side: str,
    action: Callable[[AsyncSession, Member, str], Awaitable[object]],
) -> None:
    """One step for each crossing, by the listing's author (owner side) or the requester;
    one transaction a node, so its deliveries leave together."""
    for node, group in _by_node(crossings, side):
        async with node.app[SESSIONS]() as session:
            for crossing in group:
                username = crossing.author if side == "owner" else crossing.spec.requester
                who = await member(session, node, username)
                repo = ExchangeRepository(session)
                exchange = await repo.get_by_agreement_id(crossing.agreement_id)
                if exchange is not None:
                    await action(session, who, exchange.id)
            await session.commit()


async def _request(crossings: Sequence[_Crossing], ap_ids: dict[str, str]) -> None:
    for node, group in _by_node(crossings, "requester"):
        async with node.app[SESSIONS]() as session:
            for crossing in group:
                spec = crossing.spec
                who = await member(session, node, spec.requester)
                view = await exchanges.request_exchange(
                    session, who, ap_ids[spec.listing], spec.quantity, spec.hours, spec.note
                )
                crossing.agreement_id = view.agreement_id
            await session.commit()


async def cross_exchanges(
    nodes: dict[str, LiveNode], plan: Plan, ap_ids: dict[str, str], now: datetime
) -> None:
    """Every exchange of the plan between two communities, step by step, then dated back."""
    crossings = []
    for spec in plan.exchanges:
        listing = plan.listing(spec.listing)
        if listing.community != spec.requester_community and spec.requester_community in nodes:
            owner = nodes.get(listing.community)
            if owner is not None:
                requester = nodes[spec.requester_community]
                crossings.append(_Crossing(spec, requester, owner, listing.author))
    await _request(crossings, ap_ids)
    await _all_at(crossings, "owner", {"requested"}, "exchange requests reaching the other side")

    def having(*statuses: str) -> list[_Crossing]:
        return [c for c in crossings if c.spec.status in statuses]

    await _act(having("accepted", "completed"), "owner", exchanges.accept)
    await _act(having("declined"), "owner", exchanges.decline)
    await _act(having("cancelled"), "requester", exchanges.cancel)
    await _all_at(having("completed"), "requester", {"accepted"}, "acceptances coming back")
    await _act(having("completed"), "requester", exchanges.complete)
    for status in ("completed", "declined", "cancelled"):
        await _all_at(having(status), "owner", {status}, f"{status} exchanges settling")
    await _date_back(crossings, now)


async def _date_back(crossings: Sequence[_Crossing], now: datetime) -> None:
    """Both copies get the plan's dates; notices of what is long settled are read."""
    nodes = {id(c.owner): c.owner for c in crossings} | {
        id(c.requester): c.requester for c in crossings
    }
    for node in nodes.values():
        async with node.app[SESSIONS]() as session:
            for crossing in crossings:
                if node not in (crossing.owner, crossing.requester):
                    continue
                times = times_of(crossing.spec, now)
                ids = select(Exchange.id).where(Exchange.agreement_id == crossing.agreement_id)
                await session.execute(
                    update(Exchange)
                    .where(Exchange.agreement_id == crossing.agreement_id)
                    .values(**times)
                )
                if crossing.spec.status not in ("requested", "accepted"):
                    await session.execute(
                        update(Notification)
                        .where(Notification.exchange_id.in_(ids))
                        .values(read_at=now, created_at=times["updated_at"])
                    )
            await session.commit()


async def live_local_exchanges(
    node: LiveNode, plan: Plan, specs: Sequence[ExchangeSpec], ap_ids: dict[str, str], now: datetime
) -> None:
    """Exchanges inside a community still waiting for an answer (or just accepted): made
    through the service so the member who must answer has a notification."""
    for spec in specs:
        async with node.app[SESSIONS]() as session:
            who = await member(session, node, spec.requester)
            view = await exchanges.request_exchange(
                session, who, ap_ids[spec.listing], spec.quantity, spec.hours, spec.note
            )
            exchange = await ExchangeRepository(session).get(view.id)
            if spec.status == "accepted" and exchange is not None:
                author = await member(session, node, plan.listing(spec.listing).author)
                await exchanges.accept(session, author, exchange.id)
            if exchange is not None:
                for field, value in times_of(spec, now).items():
                    setattr(exchange, field, value)
            await session.commit()
