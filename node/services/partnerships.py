"""Partnership use cases for stewards: propose, answer, dissolve, list."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from federation.discovery_docs import parse_acct
from federation.errors import FederationError
from node.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from node.protocol import partnerships as protocol
from node.protocol.context import FederationContext
from node.protocol.job_handlers import enqueue_backfill
from node.protocol.partner_sharing import cancel_withdrawal
from node.protocol.remote_actors import ActorUnavailable, resolve_actor, signed_get
from storage.models import Community, CommunityPartnership, Member, utcnow
from storage.repositories import ListingRepository
from storage.repositories.partnerships import NotificationRepository, PartnershipRepository
from storage.states import Initiator, PartnershipState

log = logging.getLogger(__name__)


def _require_steward(member: Member) -> None:
    if not member.is_steward:
        raise Forbidden("stewards only")


async def _actor_from_webfinger(ctx: FederationContext, user: str, host: str) -> str:
    schemes = ("http", "https") if ctx.config.allow_private_addresses else ("https",)
    resource = quote(f"acct:{user}@{host}", safe=":@")
    last_error: Exception | None = None
    for scheme in schemes:
        try:
            jrd = await signed_get(
                ctx, f"{scheme}://{host}/.well-known/webfinger?resource={resource}"
            )
        except FederationError as exc:
            last_error = exc
            continue
        for link in jrd.get("links", []):
            if (
                isinstance(link, dict)
                and link.get("rel") == "self"
                and isinstance(link.get("href"), str)
            ):
                return str(link["href"])
        raise BadRequest(f"{user}@{host} has no ActivityPub actor")
    raise BadRequest(f"could not look up {user}@{host}: {last_error}")


async def resolve_target(ctx: FederationContext, target: str) -> Community:
    """A remote community from `slug@host`, `@slug@host`, `acct:…` or its actor URL."""
    target = target.strip()
    if target.startswith(("http://", "https://")):
        actor_id = target
    else:
        try:
            user, host = parse_acct(target)
        except ValueError as exc:
            raise ValidationFailed(f"target must be slug@host or an actor URL: {exc}") from exc
        actor_id = await _actor_from_webfinger(ctx, user, host)
    try:
        community = await resolve_actor(ctx, actor_id, refresh=True)
    except ActorUnavailable as exc:
        raise BadRequest(f"could not fetch {actor_id}: {exc}") from exc
    if community.actor_type != "Group":
        raise ValidationFailed(f"{actor_id} is a {community.actor_type}, not a community")
    return community


async def propose(
    ctx: FederationContext, session: AsyncSession, member: Member, target: str, message: str
) -> CommunityPartnership:
    _require_steward(member)
    remote = await resolve_target(ctx, target)
    local = member.community
    if remote.is_local:
        raise ValidationFailed("a community cannot partner with a community on its own node")
    repo = PartnershipRepository(session)
    existing = await repo.get_open(local.id, remote.id)
    if existing is not None:
        raise Conflict(f"a partnership with {remote.handle} is already {existing.state}")
    activity = await protocol.send_proposal(session, local, remote, message)
    return await repo.add(
        CommunityPartnership(
            local_community_id=local.id,
            remote_community_id=remote.id,
            state=PartnershipState.PROPOSED,
            initiated_by=Initiator.US,
            follow_activity_id=activity["id"],
            message=message,
            proposed_by_id=member.id,
            local_community=local,
            remote_community=remote,
        )
    )


async def _own(session: AsyncSession, member: Member, partnership_id: str) -> CommunityPartnership:
    _require_steward(member)
    partnership = await PartnershipRepository(session).get(partnership_id)
    if partnership is None or partnership.local_community_id != member.community_id:
        raise NotFound("no such partnership")
    return partnership


async def approve(
    session: AsyncSession, member: Member, partnership_id: str
) -> CommunityPartnership:
    """Only a proposal that reached us can be approved here; the proposer never can."""
    partnership = await _own(session, member, partnership_id)
    if partnership.state != PartnershipState.PENDING:
        raise Conflict(f"only a pending proposal can be approved; this one is {partnership.state}")
    partnership.state = PartnershipState.ACTIVE
    partnership.approved_by_id = member.id
    partnership.approved_at = partnership.updated_at = utcnow()
    await protocol.send_answer(session, partnership, "Accept")
    local, remote = partnership.local_community, partnership.remote_community
    # Its public listings now; its partner-only ones arrive as Creates once our
    # Accept lands (it serves its partner collection to us only then). It pages
    # ours once it has the Accept, so a withdrawal still walking can stop.
    await enqueue_backfill(session, local, remote)
    await cancel_withdrawal(session, local, remote)
    await NotificationRepository(session).mark_read(member.community_id, partnership.id)
    return partnership


async def reject(
    session: AsyncSession, member: Member, partnership_id: str
) -> CommunityPartnership:
    partnership = await _own(session, member, partnership_id)
    if partnership.state != PartnershipState.PENDING:
        raise Conflict(f"only a pending proposal can be rejected; this one is {partnership.state}")
    await protocol.send_answer(session, partnership, "Reject")
    await protocol.end_partnership(session, partnership, PartnershipState.REJECTED)
    await NotificationRepository(session).mark_read(member.community_id, partnership.id)
    return partnership


async def dissolve(
    session: AsyncSession, member: Member, partnership_id: str
) -> CommunityPartnership:
    """Ends an active partnership, or withdraws a proposal of ours still unanswered."""
    partnership = await _own(session, member, partnership_id)
    if partnership.state not in (PartnershipState.ACTIVE, PartnershipState.PROPOSED):
        raise Conflict(f"a {partnership.state} partnership cannot be dissolved")
    await protocol.send_dissolution(session, partnership)
    await protocol.end_partnership(session, partnership, PartnershipState.DISSOLVED)
    return partnership


async def list_partnerships(
    session: AsyncSession, member: Member
) -> Sequence[CommunityPartnership]:
    return await PartnershipRepository(session).list_for_community(member.community_id)


async def partner_shared_count(session: AsyncSession, community: Community) -> int:
    """How many listings a new partner would see beyond the public ones."""
    return await ListingRepository(session).count_partners_only(community.id, "active")


async def active_partner_names(session: AsyncSession, community: Community) -> list[str]:
    """Names of the communities a "partners" listing of `community` reaches today."""
    active = await PartnershipRepository(session).get_active_for_community(community.id)
    return sorted(partnership.remote_community.name for partnership in active)
