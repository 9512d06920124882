"""The visibility rule. Every path that shows a listing to anyone asks this module.

| visibility | who sees it                                   |
|------------|-----------------------------------------------|
| community  | members of the home community                 |
| partners   | + communities in an active partnership        |
| public     | + anyone                                      |
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Listing
from storage.states import Visibility, values

PUBLIC, PARTNERS, COMMUNITY = Visibility.PUBLIC, Visibility.PARTNERS, Visibility.COMMUNITY


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a local member's community, a remote community actor, or nobody."""

    local_community_id: int | None = None
    remote_actor: str | None = None
    is_active_partner: bool = False
    partner_actors: tuple[str, ...] = ()

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()


def resolve_visibility(visibility: str | None, is_public: bool | None) -> Visibility:
    """Combine the two request fields; `is_public` is an alias kept for older clients."""
    if visibility is None:
        return PUBLIC if is_public else COMMUNITY
    try:
        known = Visibility(visibility)
    except ValueError:
        raise ValueError(f"visibility must be one of {', '.join(values(Visibility))}") from None
    if is_public is not None and is_public != (known == PUBLIC):
        raise ValueError("is_public contradicts visibility")
    return known


def may_view(listing: Listing, viewer: Viewer) -> bool:
    if viewer.local_community_id is not None and viewer.local_community_id == listing.community_id:
        return True
    if listing.visibility == PUBLIC:
        return True
    return listing.visibility == PARTNERS and viewer.is_active_partner


def leaves_node(listing: Listing) -> bool:
    """Whether the listing may be serialised for anyone outside its community at all."""
    return listing.visibility in (PARTNERS, PUBLIC)


@dataclass(frozen=True)
class QueuedRecipient:
    """Where a queued listing delivery stands with its sender now, at send time."""

    is_active_partner: bool = False
    is_follower: bool = False
    is_blocked: bool = False


def delivery_refusal(
    listing: Listing | None, carried_audience: str | None, recipient: QueuedRecipient
) -> str | None:
    """Why a queued copy of `listing` must not be sent now, or None if it still may.

    Asked when the delivery is about to go out, not only when it was queued:
    a delivery can wait days in backoff while the partnership ends, the
    listing becomes less visible or is deleted, or the host is blocked. The
    body says the audience it was shared under, so it goes out only while the
    listing still has exactly that visibility and the recipient is still in it.
    """
    if recipient.is_blocked:
        return "recipient's host is blocked"
    if listing is None:
        return "listing no longer exists"
    if listing.visibility != carried_audience:
        return f"listing is now {listing.visibility}, the delivery shares it as {carried_audience}"
    if carried_audience == PARTNERS and not recipient.is_active_partner:
        return "recipient is no longer an active partner"
    if carried_audience == PUBLIC and not (recipient.is_follower or recipient.is_active_partner):
        return "recipient no longer follows or partners with the sender"
    return None
