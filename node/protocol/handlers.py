"""What we do with each kind of activity that reaches our inboxes.

One small handler per type (the table is at the bottom). The inbox has already
checked the signature and that the signer is the activity's actor; handlers
check what only they can: that the object is ours to act on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from federation.errors import FetchError
from federation.inbox_processor import Handler, IgnoreActivity, InboundActivity, Retry
from federation.jsonld import normalize_activity
from federation.vocab import ACTOR_TYPES, Activity, parse_note
from node.domain import urls
from node.protocol import exchanges, partnerships, relays
from node.protocol.answers import on_answer
from node.protocol.context import FederationContext
from node.protocol.mirror import NotMirrored, audience_of, mirror_note
from node.protocol.proposal_limits import check_pending_cap
from node.protocol.publishing import send
from node.protocol.receiving import may_receive
from node.protocol.remote_actors import ActorUnavailable, resolve_actor, resolve_sender
from storage.models import Community
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import Audience, FollowState

log = logging.getLogger(__name__)

ProtocolHandler = Callable[[FederationContext, Activity], Awaitable[None]]


class Ignored(IgnoreActivity):
    """The activity is well-formed but not something we act on; recorded, not retried."""


async def _local_target(ctx: FederationContext, ap_id: str | None) -> Community:
    async with ctx.sessions() as session:
        community = await CommunityRepository(session).get_by_ap_id(ap_id or "")
    if community is None or not community.is_local:
        raise Ignored(f"{ap_id} is not a community on this node")
    return community


async def on_follow(ctx: FederationContext, activity: Activity) -> None:
    """A plain follow subscribes to public listings and is accepted at once; a
    partnership proposal waits for a steward."""
    community = await _local_target(ctx, activity.object_id)
    follower = await resolve_actor(ctx, activity.actor)
    if activity.partnership:
        if follower.actor_type != "Group":
            raise Ignored(f"{follower.ap_id} is not a community and cannot be a partner")
        await _refusing(check_pending_cap(ctx, community, follower))
        await _refusing(partnerships.receive_proposal(ctx, activity, community, follower))
        return
    async with ctx.sessions() as session:
        await FollowRepository(session).upsert(
            direction="in",
            local_community_id=community.id,
            remote_actor=follower.ap_id,
            follow_activity_id=activity.id,
            state=FollowState.ACTIVE,
            remote_inbox=follower.inbox_url,
            remote_shared_inbox=follower.shared_inbox_url,
        )
        inbox = urls.delivery_inbox(follower.inbox_url, follower.shared_inbox_url, fan_out=False)
        follow = {k: v for k, v in activity.raw.items() if k != "@context"}
        await send(
            session, community, "Accept", follow, {inbox} if inbox else set(), to=[follower.ap_id]
        )
        await session.commit()


async def _refusing(step: Awaitable[None]) -> None:
    try:
        await step
    except partnerships.PartnershipRefused as exc:
        raise Ignored(str(exc)) from exc


async def on_actor_update(ctx: FederationContext, activity: Activity) -> None:
    """An actor we know says its document changed (a name, counts, leaving directories).

    The document is read again from the actor's own server rather than taken from
    the activity, so what we store is what its origin serves; an actor we have never
    cached is not worth a request.
    """
    async with ctx.sessions() as session:
        cached = await CommunityRepository(session).get_by_ap_id(activity.actor)
    if cached is None or cached.is_local:
        raise Ignored(f"Update of {activity.actor}, an actor we do not keep")
    await resolve_actor(ctx, activity.actor, refresh=True)


def updates_its_actor(activity: Activity) -> bool:
    obj = activity.object
    return (
        activity.type == "Update"
        and isinstance(obj, dict)
        and obj.get("id") == activity.actor
        and obj.get("type") in ACTOR_TYPES
    )


async def on_create_or_update(ctx: FederationContext, activity: Activity) -> None:
    """A listing to mirror, an actor's own changes, or, for exchanges, a thread message
    or a status change."""
    if updates_its_actor(activity):
        await on_actor_update(ctx, activity)
        return
    if activity.type == "Create" and exchanges.is_exchange_message(activity):
        await exchanges.on_thread_message(ctx, activity)
        return
    if activity.type == "Update" and exchanges.is_exchange_update(activity):
        await exchanges.on_agreement_update(ctx, activity)
        return
    if not isinstance(activity.object, dict):
        raise Ignored("we only mirror listings embedded in the activity")
    note = parse_note(normalize_activity(activity.object))
    origin = await resolve_sender(ctx, activity.actor)
    audience = audience_of(note)
    if audience is None:
        raise Ignored(f"{note.id} is addressed to nobody we know how to show it to")
    # One transaction decides and mirrors: a partnership ending meanwhile waits for it.
    async with ctx.sessions() as session:
        if not await may_receive(session, origin, audience):
            raise Ignored(f"no community here follows or partners with {origin.ap_id}")
        try:
            await mirror_note(session, note, origin, audience, ctx.config.remote_images_per_source)
        except NotMirrored as exc:
            raise Ignored(str(exc)) from exc
        await session.commit()


async def on_update(ctx: FederationContext, activity: Activity) -> None:
    """An Update of the sender's own actor (a new key, a new name, leaving directories)
    refreshes our copy from its origin; any other Update is a listing's or an exchange's.

    Another actor's document is never taken from an Update: `on_actor_update` reads it
    again through `resolve_actor`, which applies every rule an actor must pass.
    """
    obj = activity.object
    if isinstance(obj, dict) and obj.get("type") in ACTOR_TYPES and obj.get("id") != activity.actor:
        raise Ignored(f"{activity.actor} cannot update another actor, {obj.get('id')}")
    await on_create_or_update(ctx, activity)


async def on_delete(ctx: FederationContext, activity: Activity) -> None:
    """A Delete removes the cached copy, if the deleter is the listing's community."""
    target = activity.object_id or ""
    async with ctx.sessions() as session:
        listings = RemoteListingRepository(session)
        origin = await CommunityRepository(session).get_by_ap_id(activity.actor)
        if origin is None:
            raise Ignored(f"Delete from unknown actor {activity.actor}")
        if target == activity.actor:
            for audience in (Audience.PUBLIC, Audience.PARTNERS):
                await listings.remove_from_origin(origin.id, audience)
        else:
            cached = await listings.get_by_ap_id(target)
            if cached is None or cached.origin_community_id != origin.id:
                raise Ignored(f"Delete of {target}, which we do not hold from this actor")
            await listings.remove(target)
        await session.commit()


def inbox_handlers(app: web.Application) -> dict[str, Handler]:
    """The table the inbox processor dispatches on, bound to this app's resources."""

    def bind(handler: ProtocolHandler) -> Handler:
        async def handle(inbound: InboundActivity) -> None:
            try:
                await handler(FederationContext.from_app(app), inbound.activity)
            except (ActorUnavailable, FetchError) as exc:
                raise Retry(str(exc)) from exc
            except IntegrityError as exc:
                # Another writer stored the same object first (a partner's listing
                # arriving while a backfill mirrors it): a later attempt reads theirs.
                raise Retry(f"stored meanwhile by another writer: {exc.orig}") from exc

        return handle

    return {name: bind(handler) for name, handler in HANDLERS.items()}


HANDLERS: dict[str, ProtocolHandler] = {
    "Follow": on_follow,
    "Offer": exchanges.on_offer,
    "Undo": on_answer,
    "Accept": on_answer,
    "Reject": on_answer,
    "Create": on_create_or_update,
    "Update": on_update,
    "Delete": on_delete,
    "Announce": relays.on_announce,
}
