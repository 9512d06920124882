"""Telling other nodes what changed: listing events become queued deliveries.

Deliveries are enqueued in the caller's transaction, so a change and the news
of it commit together or not at all. Who receives what follows the visibility
rule: public listings go to followers, partner listings to active partners,
community listings nowhere. A listing that becomes less visible is withdrawn
(Delete) from whoever may no longer see it; one that becomes more visible is
announced (Create) to its new audience.

A partner-only activity goes to each partner separately and names only that
partner, so no partner learns who the others are. Each delivery records what
it carries, so the queue can check the audience again at send time; copies
queued under an audience the listing no longer has are cancelled at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.builders import build_activity, build_tombstone
from federation.vocab import PUBLIC
from node.domain import urls
from node.domain.conversion import listing_to_note
from node.protocol.delivery_queue import enqueue_activity
from node.protocol.documents import actor_document
from node.protocol.handoff import HANDED
from node.protocol.recipients import Audience, audience_for, follower_inboxes, partner_inboxes
from storage.models import Community, Listing, utcnow
from storage.repositories import DeliveryRepository
from storage.repositories.deliveries import NOTHING, Carried
from storage.states import Visibility

WAKE_DELIVERY = "wake_delivery"


def activity_id(community: Community) -> str:
    return urls.new_activity_id(community.ap_id)


async def enqueue(
    session: AsyncSession,
    community: Community,
    activity: dict[str, Any],
    inboxes: set[str],
    carried: Carried = NOTHING,
) -> None:
    """Queue in the caller's transaction; its commit wakes the worker (`wake_after_commit`),
    unless every new delivery was handed to it already (`node.protocol.handoff`)."""
    if not inboxes:
        return
    handed = len(session.info.get(HANDED, ()))
    added = await enqueue_activity(session, activity, community, sorted(inboxes), carried=carried)
    if added > len(session.info.get(HANDED, ())) - handed:
        session.info[WAKE_DELIVERY] = True


async def send(
    session: AsyncSession,
    community: Community,
    activity_type: str,
    obj: str | dict[str, Any],
    inboxes: set[str],
    *,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    carried: Carried = NOTHING,
    **extra: Any,
) -> dict[str, Any]:
    """Build one activity from `community` and queue it for `inboxes`."""
    activity = build_activity(
        activity_type,
        activity_id(community),
        community.ap_id,
        obj,
        to=to or [],
        cc=cc or [],
        **extra,
    )
    await enqueue(session, community, activity, inboxes, carried)
    return activity


async def publish_actor_update(session: AsyncSession, community: Community) -> None:
    """Tell followers and partners that the community's actor changed (as Mastodon does
    for a profile edit): an `Update` carrying the actor document, so that a change they
    show, such as leaving or rejoining directories, reaches them before their next
    refresh. Queued in the caller's transaction, like every delivery."""
    document = await actor_document(session, community)
    inboxes = set((await partner_inboxes(session, community)).values())
    inboxes |= await follower_inboxes(session, community)
    followers = community.followers_url or urls.followers(community.ap_id)
    await send(session, community, "Update", document, inboxes, to=[PUBLIC], cc=[followers])


async def send_to_partner(
    session: AsyncSession,
    community: Community,
    activity_type: str,
    listing: Listing,
    partner: str,
    inbox: str,
) -> None:
    """A Create or Update of a partner-only listing for one partner, naming only it."""
    note = listing_to_note(listing, community, [partner])
    carried = Carried(listing_id=listing.id, audience=Visibility.PARTNERS, recipient_actor=partner)
    await send(session, community, activity_type, note, {inbox}, to=[partner], carried=carried)


async def publish_listing_change(
    session: AsyncSession, listing: Listing, previous_visibility: str | None, action: str
) -> None:
    """Create, Update or Delete for each audience, from what it could and can now see."""
    community = listing.community
    current = Visibility.COMMUNITY if action == "delete" else listing.visibility
    if action != "create":
        reason = "listing was deleted" if action == "delete" else f"listing is now {current}"
        await DeliveryRepository(session).cancel_for_listing(
            listing.id, reason, keep_audience=current
        )
    before = await audience_for(session, community, previous_visibility or Visibility.COMMUNITY)
    after = await audience_for(session, community, current)
    withdrawn = before.inboxes() - after.inboxes()
    if withdrawn:
        await _withdraw(session, listing, previous_visibility, before, withdrawn)
    if current == Visibility.PUBLIC:
        note = listing_to_note(listing, community)
        audience = {"to": note["to"], "cc": note["cc"]}
        carried = Carried(listing_id=listing.id, audience=Visibility.PUBLIC)
        reached = before.inboxes()
        added, kept = after.inboxes() - reached, after.inboxes() & reached
        await send(session, community, "Create", note, added, carried=carried, **audience)
        await send(session, community, "Update", note, kept, carried=carried, **audience)
    elif current == Visibility.PARTNERS:
        reached = before.inboxes()
        for partner, inbox in sorted(after.partners.items()):
            kind = "Update" if inbox in reached else "Create"
            await send_to_partner(session, community, kind, listing, partner, inbox)


async def _withdraw(
    session: AsyncSession,
    listing: Listing,
    previous_visibility: str | None,
    before: Audience,
    withdrawn: set[str],
) -> None:
    """Deletes for those who could see the listing and no longer may: one public
    Delete for a listing that was public, else one per partner naming only it."""
    community = listing.community
    tombstone = build_tombstone(listing.ap_id, former_type="Note", deleted=utcnow())
    if previous_visibility == Visibility.PUBLIC:
        await send(session, community, "Delete", tombstone, withdrawn, to=[PUBLIC])
        return
    for partner, inbox in sorted(before.partners.items()):
        if inbox in withdrawn:
            await send(session, community, "Delete", tombstone, {inbox}, to=[partner])
