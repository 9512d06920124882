"""Inbound Accept, Reject and Undo, routed by what they answer.

An answer names an earlier activity by its id: a follow we sent or received,
or a partnership proposal. That thing is looked up once, and the handler
for (thing, verb) runs with it inside one transaction, so an answer is
applied whole or not at all. An answer that names nothing we know, or that
comes from someone other than the other party, is recorded as ignored.
An exchange's Offer is answered the same way, by its id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from federation.inbox_processor import IgnoreActivity
from federation.vocab import Activity
from node.protocol import exchanges, partnerships
from node.protocol.context import FederationContext
from node.protocol.job_handlers import cancel_backfill, enqueue_backfill
from node.protocol.remote_actors import resolve_actor
from storage.models import Community, CommunityPartnership, Exchange, Follow, Relay
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.relays import RelayRepository
from storage.states import FollowState, RelayState

Verb = Literal["Accept", "Reject", "Undo"]
Thing = Literal["follow", "partnership", "exchange", "relay"]


class NotAnAnswer(IgnoreActivity):
    """The activity answers nothing we know from this actor; recorded, not retried."""


@dataclass(frozen=True)
class Answered:
    """What an answer names, as found in our tables, and who sent the answer."""

    thing: Thing
    sender: Community
    follow: Follow | None = None
    partnership: CommunityPartnership | None = None
    exchange: Exchange | None = None
    relay: Relay | None = None


AnswerHandler = Callable[[AsyncSession, Activity, Answered], Awaitable[None]]


async def _follow_named(session: AsyncSession, activity: Activity) -> Follow | None:
    """The follow an answer names by id, or, for an Undo that embeds a follow whose id
    we never saw (some servers mint a new one), by its object and actor."""
    follows = FollowRepository(session)
    follow = await follows.get_by_activity_id(activity.object_id or "")
    obj = activity.object
    if follow is None and activity.type == "Undo" and isinstance(obj, dict):
        target = await CommunityRepository(session).get_by_ap_id(str(obj.get("object")))
        if target is not None and target.is_local:
            follow = await follows.get("in", target.id, activity.actor)
    return follow


async def find_answered(session: AsyncSession, activity: Activity, sender: Community) -> Answered:
    """Look up once what `activity` answers; only the other party may answer."""
    named = activity.object_id or ""
    partnership = await PartnershipRepository(session).get_by_follow_id(named)
    if partnership is not None:
        if partnership.remote_community_id != sender.id:
            raise NotAnAnswer(f"{activity.type} from {sender.ap_id} for someone else's proposal")
        return Answered("partnership", sender, partnership=partnership)
    exchange = await exchanges.lookup_answered(session, named)
    if exchange is not None:
        return Answered("exchange", sender, exchange=exchange)
    if activity.partnership:
        raise NotAnAnswer(f"{activity.type} answers no partnership with {sender.ap_id}")
    relay = await RelayRepository(session).get_by_follow_id(named)
    if relay is not None:
        if relay.actor_id != sender.ap_id:
            raise NotAnAnswer(f"{activity.type} from {sender.ap_id} for another relay's follow")
        return Answered("relay", sender, relay=relay)
    obj = activity.object
    if isinstance(obj, dict) and obj.get("type") not in (None, "Follow"):
        raise NotAnAnswer(f"{activity.type} of {obj.get('type')} is not something we track")
    follow = await _follow_named(session, activity)
    if follow is None or follow.remote_actor != sender.ap_id:
        raise NotAnAnswer(f"{activity.type} answers no follow with {sender.ap_id}")
    return Answered("follow", sender, follow=follow)


# --- follows -----------------------------------------------------------------------


def _ours(answered: Answered, verb: str) -> Follow:
    """A follow we sent: only those can be accepted or rejected."""
    follow = answered.follow
    assert follow is not None
    if follow.direction != "out":
        raise NotAnAnswer(f"{verb} of a follow we did not send")
    return follow


async def _local(session: AsyncSession, community_id: int) -> Community:
    local = await CommunityRepository(session).get(community_id)
    if local is None:
        raise NotAnAnswer("the following community no longer exists")
    return local


async def follow_accepted(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    """An accepted follow queues a backfill of the followed community's public listings."""
    follow = _ours(answered, "Accept")
    follow.state = FollowState.ACTIVE
    await enqueue_backfill(
        session, await _local(session, follow.local_community_id), answered.sender
    )


async def follow_rejected(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    follow = _ours(answered, "Reject")
    follow.state = FollowState.REJECTED
    await cancel_backfill(
        session, await _local(session, follow.local_community_id), answered.sender
    )


async def follow_undone(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    """A remote follower unfollows: it stops receiving our public listings."""
    follow = answered.follow
    assert follow is not None
    if follow.direction != "in":
        raise NotAnAnswer("Undo of a follow that was ours, not theirs")
    await FollowRepository(session).delete(follow)


# --- relays ------------------------------------------------------------------------


async def relay_accepted(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    """The relay took our subscription: our public listings go to it from now on."""
    assert answered.relay is not None
    await RelayRepository(session).set_state(answered.relay, RelayState.ACTIVE)


async def relay_rejected(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    assert answered.relay is not None
    await RelayRepository(session).set_state(answered.relay, RelayState.REJECTED)


# --- partnerships ------------------------------------------------------------------


def _partnership(
    handler: Callable[[AsyncSession, Activity, CommunityPartnership], Awaitable[None]],
) -> AnswerHandler:
    async def handle(session: AsyncSession, activity: Activity, answered: Answered) -> None:
        assert answered.partnership is not None
        try:
            await handler(session, activity, answered.partnership)
        except partnerships.PartnershipRefused as exc:
            raise NotAnAnswer(str(exc)) from exc

    return handle


async def exchange_answered(session: AsyncSession, activity: Activity, answered: Answered) -> None:
    """Accept or Reject of an Offer we sent; `exchanges` checks who may answer it."""
    assert answered.exchange is not None
    await exchanges.exchange_answered(session, activity, answered.exchange, answered.sender)


ANSWER_HANDLERS: dict[tuple[Thing, str], AnswerHandler] = {
    ("follow", "Accept"): follow_accepted,
    ("follow", "Reject"): follow_rejected,
    ("follow", "Undo"): follow_undone,
    ("partnership", "Accept"): _partnership(partnerships.receive_accept),
    ("partnership", "Reject"): _partnership(partnerships.receive_reject),
    ("partnership", "Undo"): _partnership(partnerships.receive_undo),
    ("relay", "Accept"): relay_accepted,
    ("relay", "Reject"): relay_rejected,
    ("exchange", "Accept"): exchange_answered,
    ("exchange", "Reject"): exchange_answered,
}


async def on_answer(ctx: FederationContext, activity: Activity) -> None:
    """Accept, Reject or Undo: find what it answers, then run (thing, verb) in one transaction.

    The sender is normally cached already (its key was just fetched to check
    the signature); it is fetched only when it is not.
    """
    sender = await resolve_actor(ctx, activity.actor)
    async with ctx.sessions() as session:
        answered = await find_answered(session, activity, sender)
        handler = ANSWER_HANDLERS.get((answered.thing, activity.type))
        if handler is None:
            raise NotAnAnswer(f"{activity.type} does not apply to a {answered.thing}")
        await handler(session, activity, answered)
        await session.commit()
