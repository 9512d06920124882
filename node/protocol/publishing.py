"""Telling other nodes what changed: listing events become queued deliveries.

Deliveries are enqueued in the caller's transaction, so a change and the news
of it commit together or not at all. Who receives what follows the visibility
rule: public listings go to followers, partner listings to active partners,
community listings nowhere. A listing that becomes less visible is withdrawn
(Delete) from whoever may no longer see it; one that becomes more visible is
announced (Create) to its new audience.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.builders import build_activity, build_tombstone
from federation.vocab import PUBLIC
from node.protocol.delivery_queue import enqueue_activity
from node.services.conversion import listing_to_note
from storage.models import Community, Listing, new_id, utcnow
from storage.repositories.follows import FollowRepository
from storage.repositories.partnerships import PartnershipRepository

WAKE_DELIVERY = "wake_delivery"


async def follower_inboxes(session: AsyncSession, community: Community) -> set[str]:
    """One inbox per remote server where it has a shared one."""
    follows = await FollowRepository(session).followers(community.id)
    return {f.remote_shared_inbox or f.remote_inbox for f in follows if f.remote_inbox}


async def partner_inboxes(session: AsyncSession, community: Community) -> dict[str, str]:
    """Active partners' actor id -> delivery inbox (shared where they have one)."""
    active = await PartnershipRepository(session).get_active_for_community(community.id)
    inboxes = {}
    for partnership in active:
        remote = partnership.remote_community
        inbox = remote.shared_inbox_url or remote.inbox_url
        if inbox:
            inboxes[remote.ap_id] = inbox
    return inboxes


async def recipients(
    session: AsyncSession, community: Community, visibility: str
) -> tuple[set[str], list[str]]:
    """(inboxes, partner actor ids) for a listing of this visibility."""
    if visibility == "community":
        return set(), []
    partners = await partner_inboxes(session, community)
    inboxes = set(partners.values())
    if visibility == "public":
        inboxes |= await follower_inboxes(session, community)
    return inboxes, sorted(partners)


def activity_id(community: Community) -> str:
    return f"{community.ap_id}/activities/{new_id()}"


async def enqueue(
    session: AsyncSession, community: Community, activity: dict[str, Any], inboxes: set[str]
) -> None:
    """Queue in the caller's transaction; the commit wakes the worker (see `storage_ctx`)."""
    if inboxes and await enqueue_activity(session, activity, community, sorted(inboxes)):
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
    await enqueue(session, community, activity, inboxes)
    return activity


async def publish_listing_change(
    session: AsyncSession, listing: Listing, previous_visibility: str | None, action: str
) -> None:
    """Create, Update or Delete for each audience, from what it could and can now see."""
    community = listing.community
    before, _ = await recipients(session, community, previous_visibility or "community")
    after, partners = await recipients(
        session, community, "community" if action == "delete" else listing.visibility
    )
    withdrawn, added, kept = before - after, after - before, before & after
    if withdrawn:
        tombstone = build_tombstone(listing.ap_id, former_type="Note", deleted=utcnow())
        to = [PUBLIC] if previous_visibility == "public" else []
        await send(session, community, "Delete", tombstone, withdrawn, to=to)
    if added or kept:
        note = listing_to_note(listing, community, partners)
        audience = {"to": note["to"], "cc": note["cc"]}
        await send(session, community, "Create", note, added, **audience)
        await send(session, community, "Update", note, kept, **audience)
