"""Who a listing goes to: its audience as inboxes and partner actors, now.

Publishing asks this module whom to send a change to; the delivery queue asks
it again when a queued delivery is about to go out, because the audience may
have changed while the delivery waited in backoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain import urls
from node.domain.visibility import QueuedRecipient, delivery_refusal
from storage.models import Community, Delivery, Listing
from storage.repositories import BlockRepository, ListingRepository
from storage.repositories.actors import host_is_blocked
from storage.repositories.deliveries import ClaimedDelivery, inbox_host
from storage.repositories.follows import FollowRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.relays import RelayRepository
from storage.states import Visibility


@dataclass(frozen=True)
class Audience:
    """Who may see a listing of one visibility: active partners (actor id -> inbox),
    and for public listings the followers' inboxes (shared where they have one) and
    the inboxes of the relays the community has an active subscription to."""

    partners: dict[str, str] = field(default_factory=dict)
    followers: frozenset[str] = frozenset()
    relays: frozenset[str] = frozenset()

    def inboxes(self) -> set[str]:
        return set(self.partners.values()) | self.followers | self.relays


NOBODY = Audience()


async def follower_inboxes(session: AsyncSession, community: Community) -> frozenset[str]:
    """One inbox per remote server where it has a shared one."""
    follows = await FollowRepository(session).follower_inboxes(community.id)
    inboxes = (
        urls.delivery_inbox(inbox, shared, fan_out=True) for inbox, shared in follows if inbox
    )
    return frozenset(inbox for inbox in inboxes if inbox)


async def partner_inboxes(session: AsyncSession, community: Community) -> dict[str, str]:
    """Active partners' actor id -> delivery inbox (shared where they have one)."""
    active = await PartnershipRepository(session).active_partner_inboxes(community.id)
    inboxes = {}
    for actor, personal, shared in active:
        inbox = urls.delivery_inbox(personal, shared, fan_out=True)
        if inbox:
            inboxes[actor] = inbox
    return inboxes


async def audience_for(session: AsyncSession, community: Community, visibility: str) -> Audience:
    """The audience of a listing of `community` with this visibility."""
    if visibility not in (Visibility.PARTNERS, Visibility.PUBLIC):
        return NOBODY
    partners = await partner_inboxes(session, community)
    if visibility == Visibility.PARTNERS:
        return Audience(partners=partners)
    return Audience(
        partners=partners,
        followers=await follower_inboxes(session, community),
        relays=await RelayRepository(session).active_inboxes(community.id),
    )


class SendTimeCheck:
    """The audience check for one claim of due deliveries.

    Each sender's audience, each listing and the block list are read once per
    claim, and only if a claimed delivery carries a listing, so a fan-out of
    one listing to hundreds of hosts costs a few queries, not a few per
    delivery, and protocol messages cost none.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._blocked: frozenset[str] | None = None
        self._audiences: dict[int, Audience] = {}
        self._listings: dict[str, Listing | None] = {}

    async def refusal(self, delivery: Delivery | ClaimedDelivery, sender: Community) -> str | None:
        """Why `delivery` must not go out now, or None. Only a delivery that carries
        a listing is checked; tombstones and protocol messages always go out."""
        if delivery.listing_id is None:
            return None
        if delivery.listing_id not in self._listings:
            found = await ListingRepository(self._session).get(delivery.listing_id)
            self._listings[delivery.listing_id] = found
        listing = self._listings[delivery.listing_id]
        if listing is not None and listing.community_id != sender.id:
            listing = None
        return delivery_refusal(listing, delivery.audience, await self._recipient(delivery, sender))

    async def _recipient(
        self, delivery: Delivery | ClaimedDelivery, sender: Community
    ) -> QueuedRecipient:
        audience = self._audiences.get(sender.id)
        if audience is None:
            audience = await audience_for(self._session, sender, Visibility.PUBLIC)
            self._audiences[sender.id] = audience
        if self._blocked is None:
            self._blocked = await BlockRepository(self._session).domains()
        actor = delivery.recipient_actor
        if actor is not None:
            return QueuedRecipient(
                is_active_partner=actor in audience.partners,
                is_blocked=host_is_blocked(self._blocked, _host(actor)),
            )
        return QueuedRecipient(
            is_active_partner=delivery.target_inbox in audience.partners.values(),
            is_follower=(
                delivery.target_inbox in audience.followers
                or delivery.target_inbox in audience.relays
            ),
            is_blocked=host_is_blocked(self._blocked, delivery.host),
        )


def _host(actor_id: str) -> str:
    """`host` or `host:port`, spelled as deliveries and block entries are."""
    try:
        return inbox_host(actor_id)
    except ValueError:
        return ""
