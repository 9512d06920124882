"""The partnership protocol: a Follow flagged `partnership`, answered by Accept/Reject,
ended by Undo (the proposer) or Reject (the other side). Both sides keep a row.

On activation each side queues a backfill job of the other's collections, and the
proposer a job sending its partner-only listings; on dissolution each side purges the
other's partner listings and queues a job withdrawing its own
(`node.protocol.partner_sharing`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.vocab import Activity
from node.domain import urls
from node.protocol.context import FederationContext
from node.protocol.job_handlers import cancel_backfill, enqueue_backfill
from node.protocol.partner_sharing import start_push, start_withdrawal
from node.protocol.publishing import send
from storage.models import Community, CommunityPartnership, Notification, utcnow
from storage.repositories import DeliveryRepository
from storage.repositories.partnerships import NotificationRepository, PartnershipRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import Initiator, PartnershipState

PROPOSED, PENDING, ACTIVE = (
    PartnershipState.PROPOSED,
    PartnershipState.PENDING,
    PartnershipState.ACTIVE,
)
REJECTED, DISSOLVED = PartnershipState.REJECTED, PartnershipState.DISSOLVED

log = logging.getLogger(__name__)


class PartnershipRefused(Exception):
    """An inbound partnership message that answers nothing we know; recorded, not retried."""


def inbox_of(remote: Community) -> set[str]:
    inbox = urls.delivery_inbox(remote.inbox_url, remote.shared_inbox_url, fan_out=False)
    return {inbox} if inbox else set()


async def send_proposal(
    session: AsyncSession, local: Community, remote: Community, message: str
) -> dict[str, Any]:
    return await send(
        session,
        local,
        "Follow",
        remote.ap_id,
        inbox_of(remote),
        to=[remote.ap_id],
        partnership=True,
        content=message or None,
    )


async def send_answer(
    session: AsyncSession, partnership: CommunityPartnership, answer: str
) -> None:
    """Accept or Reject naming the proposal's Follow by its id."""
    local, remote = partnership.local_community, partnership.remote_community
    follow = {
        "id": partnership.follow_activity_id,
        "type": "Follow",
        "actor": remote.ap_id if partnership.initiated_by == Initiator.THEM else local.ap_id,
        "object": local.ap_id if partnership.initiated_by == Initiator.THEM else remote.ap_id,
        "partnership": True,
    }
    await send(
        session, local, answer, follow, inbox_of(remote), to=[remote.ap_id], partnership=True
    )


async def send_dissolution(session: AsyncSession, partnership: CommunityPartnership) -> None:
    """The proposer undoes its Follow; the other side rejects it. Either ends it for both."""
    if partnership.initiated_by == Initiator.US:
        local, remote = partnership.local_community, partnership.remote_community
        follow = {
            "id": partnership.follow_activity_id,
            "type": "Follow",
            "actor": local.ap_id,
            "object": remote.ap_id,
            "partnership": True,
        }
        await send(
            session, local, "Undo", follow, inbox_of(remote), to=[remote.ap_id], partnership=True
        )
    else:
        await send_answer(session, partnership, "Reject")


async def end_partnership(
    session: AsyncSession, partnership: CommunityPartnership, state: str
) -> None:
    """Stop sharing both ways: purge their partner listings, withdraw ours, and
    cancel what is still queued for them (the queue checks again at send time)."""
    was_active = partnership.state == ACTIVE
    partnership.state = state
    partnership.ended_at = partnership.updated_at = utcnow()
    # A proposal withdrawn before anyone answered must not keep the stewards' count up.
    await NotificationRepository(session).mark_read(partnership.local_community_id, partnership.id)
    await cancel_backfill(session, partnership.local_community, partnership.remote_community)
    if was_active:
        # Another community on this node may still be its partner: the cache
        # serves each community only what its own partnerships allow, so the
        # copies go only when nobody here may show them any more.
        await session.flush()
        partners = PartnershipRepository(session)
        if not await partners.is_anyone_partnered_with(partnership.remote_community_id):
            await RemoteListingRepository(session).remove_from_origin(
                partnership.remote_community_id, "partners"
            )
        # The push is cancelled first, so that a page it is writing finishes
        # before the deliveries queued for the partner are cancelled.
        await start_withdrawal(session, partnership.local_community, partnership.remote_community)
        await DeliveryRepository(session).cancel_for_recipient(
            partnership.local_community_id,
            partnership.remote_community.ap_id,
            "partnership ended",
        )


async def receive_proposal(
    ctx: FederationContext, activity: Activity, local: Community, remote: Community
) -> None:
    async with ctx.sessions() as session:
        repo = PartnershipRepository(session)
        if await repo.get_by_follow_id(activity.id) is not None:
            return
        existing = await repo.get_open(local.id, remote.id)
        if existing is not None:
            raise PartnershipRefused(
                f"a partnership with {remote.ap_id} is already {existing.state}"
            )
        message = activity.raw.get("content")
        partnership = await repo.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state=PENDING,
                initiated_by=Initiator.THEM,
                follow_activity_id=activity.id,
                message=message[:2000] if isinstance(message, str) else "",
            )
        )
        await NotificationRepository(session).add(
            Notification(
                community_id=local.id,
                kind="partnership_proposed",
                partnership_id=partnership.id,
                text=f"{remote.name} ({remote.handle}) proposes a partnership",
            )
        )
        await session.commit()


def _expect(activity: Activity, partnership: CommunityPartnership, states: tuple[str, ...]) -> None:
    if partnership.state not in states:
        raise PartnershipRefused(f"{activity.type} for a partnership that is {partnership.state}")


async def receive_accept(
    session: AsyncSession, activity: Activity, partnership: CommunityPartnership
) -> None:
    """Only a proposal we sent can be accepted: an unsolicited Accept is refused."""
    _expect(activity, partnership, (PROPOSED, ACTIVE))
    if partnership.initiated_by != Initiator.US:
        raise PartnershipRefused("an Accept for a proposal we did not send")
    if partnership.state == ACTIVE:
        return
    partnership.state = ACTIVE
    partnership.updated_at = utcnow()
    # The other side could not page our partner collection yet (its backfill ran
    # at its steward's approval, before this Accept reached us): we send it our
    # partner-only listings, from a job, a page at a time.
    await start_push(session, partnership.local_community, partnership.remote_community)
    await enqueue_backfill(session, partnership.local_community, partnership.remote_community)


async def receive_reject(
    session: AsyncSession, activity: Activity, partnership: CommunityPartnership
) -> None:
    _expect(
        activity,
        partnership,
        (PROPOSED, PENDING, ACTIVE),
    )
    new_state = DISSOLVED if partnership.state == ACTIVE else REJECTED
    await end_partnership(session, partnership, new_state)


async def receive_undo(
    session: AsyncSession, activity: Activity, partnership: CommunityPartnership
) -> None:
    _expect(activity, partnership, (PENDING, ACTIVE))
    if partnership.initiated_by != Initiator.THEM:
        raise PartnershipRefused("only the proposer can undo a partnership proposal")
    await end_partnership(session, partnership, DISSOLVED)
