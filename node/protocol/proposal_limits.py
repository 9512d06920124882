"""How many unanswered partnership proposals one remote host may leave with a community.

The inbox limits how fast a host may propose (`federation.rate_limit`); this
limits how many of its proposals wait for a steward at once, so that a
server that makes up communities cannot bury the real proposals. Further
proposals from that host are ignored until a steward answers some.
"""

from __future__ import annotations

from node.protocol.context import FederationContext
from node.protocol.partnerships import PartnershipRefused
from storage.models import Community
from storage.repositories.partnerships import PartnershipRepository


async def check_pending_cap(ctx: FederationContext, local: Community, remote: Community) -> None:
    """Refuse a proposal from `remote` when its host already has the most allowed pending."""
    cap = ctx.config.max_pending_proposals_per_host
    async with ctx.sessions() as session:
        pending = await PartnershipRepository(session).count_pending_from_host(
            local.id, remote.host
        )
    if pending >= cap:
        raise PartnershipRefused(
            f"{remote.host} already has {pending} proposals waiting for {local.ap_id}"
        )
