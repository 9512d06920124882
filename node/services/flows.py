"""Flow metrics: where a community's exchanges went, the "leakage" view.

Only completed exchanges count, dated by their completion. Seen from one
community, an exchange is internal (it provided and received), outgoing (it
provided to another community) or incoming (another provided to it). The
leakage ratio is the share of the hours it provided that left it:
outgoing hours / (internal hours + outgoing hours), 0 when it provided
nothing. An exchange without hours counts in the counts and adds no hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community
from storage.repositories.exchanges import ExchangeRepository


@dataclass
class FlowTotals:
    count: int = 0
    hours: float = 0.0

    def add(self, hours: float | None) -> None:
        self.count += 1
        self.hours += hours or 0.0


@dataclass
class PartnerFlow:
    """Flows between the community and one other; `net_hours` is what it gained."""

    community_id: str
    name: str
    outgoing_count: int = 0
    incoming_count: int = 0
    outgoing_hours: float = 0.0
    incoming_hours: float = 0.0

    @property
    def net_hours(self) -> float:
        return self.incoming_hours - self.outgoing_hours


@dataclass
class Flows:
    internal: FlowTotals = field(default_factory=FlowTotals)
    outgoing: FlowTotals = field(default_factory=FlowTotals)
    incoming: FlowTotals = field(default_factory=FlowTotals)
    by_community: list[PartnerFlow] = field(default_factory=list)

    @property
    def leakage_ratio(self) -> float:
        provided = self.internal.hours + self.outgoing.hours
        return self.outgoing.hours / provided if provided > 0 else 0.0


async def flow_metrics(
    session: AsyncSession,
    community: Community,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Flows:
    """Completed exchanges with `since <= completed_at < until` (either bound optional)."""
    flows = Flows()
    partners: dict[int, PartnerFlow] = {}
    for exchange in await ExchangeRepository(session).completed_touching(
        community.id, since, until
    ):
        provided = exchange.provider_community_id == community.id
        received = exchange.receiver_community_id == community.id
        if provided and received:
            flows.internal.add(exchange.hours)
            continue
        other = exchange.receiver_community if provided else exchange.provider_community
        partner = partners.setdefault(other.id, PartnerFlow(other.ap_id, other.name))
        hours = exchange.hours or 0.0
        if provided:
            flows.outgoing.add(exchange.hours)
            partner.outgoing_count += 1
            partner.outgoing_hours += hours
        else:
            flows.incoming.add(exchange.hours)
            partner.incoming_count += 1
            partner.incoming_hours += hours
    flows.by_community = sorted(
        partners.values(),
        key=lambda p: (-(p.outgoing_hours + p.incoming_hours), p.name, p.community_id),
    )
    return flows
