"""Relay subscriptions (the Mastodon/LitePub relay protocol), both ways.

Out: a steward subscribes one of our communities to a relay. The community
sends the relay's inbox a `Follow` of the Public collection, as Mastodon
does; the relay answers `Accept` (or `Reject`, see `node.protocol.answers`).
While the subscription is active, the community's public listings go to the
relay's inbox as well (`node.protocol.recipients`), never anything else.
Removing it sends `Undo` of that Follow. Both go through the delivery queue.

In: a relay forwards others' public posts, wrapped in `Announce` (LitePub
relays announce the object's id). Nothing in the relay's body is believed.
An `Announce` from a relay we subscribe to queues one `relay_fetch` job per
announced object id: the object is fetched from its own server (the address
guard applies, no redirect to another host), and it is mirrored as a public
listing of its community only if that community's actor resolves and owns it,
under the same rules as everything else in the mirror (`mirror_note`).
A relay may cause at most `relay_fetches_per_minute` fetches, and the mirror
keeps at most `relay_max_listings_per_origin` public listings of a community
none of ours follows or partners with. Mastodon-style relays that forward the
original activity unchanged (signed over HTTP by the relay, not its author)
are refused by the inbox's signature rule; those relays also accept LitePub
subscribers' traffic, and what they `Announce` is handled here.
"""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.errors import FederationError, ObjectGone, ObjectNotFound, Refused
from federation.hosts import same_host, url_host
from federation.inbox_processor import IgnoreActivity
from federation.jsonld import normalize_activity
from federation.vocab import PUBLIC, Activity, Note, VocabError, parse_note
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobHandler, JobRun, RetryJob, enqueue_job
from node.protocol.mirror import NotMirrored, mirror_note
from node.protocol.publishing import send
from node.protocol.receiving import may_receive
from node.protocol.remote_actors import ActorUnavailable, resolve_actor, signed_get
from node.protocol.ttl_cache import TtlCache
from storage.models import Community, Relay
from storage.repositories import BlockRepository, CommunityRepository
from storage.repositories.actors import host_is_blocked
from storage.repositories.follows import FollowRepository
from storage.repositories.relays import RelayRepository, public_listings_from
from storage.repositories.remote_listings import RemoteListingRepository
from storage.states import Audience, RelayState

log = logging.getLogger(__name__)

RELAY_FETCH = "relay_fetch"
NOT_LISTING_HOST_SECONDS = 86400.0
"""How long a host that served a post rather than a listing is not asked again."""

_not_listing_hosts: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], TtlCache[bool]] = (
    weakref.WeakKeyDictionary()
)


def _post_hosts(ctx: FederationContext) -> TtlCache[bool]:
    """Hosts whose announced objects turned out to be posts, not listings (a Mastodon
    server on a busy relay): their next announcements cost no fetch for a day."""
    cache = _not_listing_hosts.get(ctx.sessions)
    if cache is None:
        cache = _not_listing_hosts[ctx.sessions] = TtlCache(
            NOT_LISTING_HOST_SECONDS, 10_000, time.monotonic
        )
    return cache


class RelayUnavailable(Exception):
    """No relay actor could be read at the address a steward gave."""


class RelayIgnored(IgnoreActivity):
    """An Announce we do not act on (not from a relay we subscribe to, not a URL...)."""


# --- subscribing ---------------------------------------------------------------------


def _sibling_actor(inbox_url: str) -> str | None:
    """`https://relay.example/inbox` -> `https://relay.example/actor`: where every
    common relay (Activity-Relay, pub-relay, AodeRelay, pleroma/relay) keeps its actor."""
    parts = urlsplit(inbox_url)
    if not parts.path.rstrip("/").endswith("/inbox"):
        return None
    path = parts.path.rstrip("/").removesuffix("inbox") + "actor"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


async def find_relay_actor(ctx: FederationContext, url: str) -> Community:
    """The relay actor at `url`, or the one whose inbox `url` is; one or two fetches,
    each with the client's timeouts and through the address guard."""
    try:
        return await resolve_actor(ctx, url)
    except ActorUnavailable as first:
        sibling = _sibling_actor(url)
        if sibling is None:
            raise RelayUnavailable(str(first)) from first
        try:
            actor = await resolve_actor(ctx, sibling)
        except ActorUnavailable as exc:
            raise RelayUnavailable(str(exc)) from exc
        if url.rstrip("/") not in {actor.inbox_url, actor.shared_inbox_url}:
            raise RelayUnavailable(f"{sibling} is an actor, but its inbox is not {url}") from first
        return actor


def follow_of_public(follow_id: str, community: Community) -> dict[str, Any]:
    """Our Follow as an Undo embeds it (relays match either the id or the body)."""
    return {"id": follow_id, "type": "Follow", "actor": community.ap_id, "object": PUBLIC}


async def subscribe(session: AsyncSession, community: Community, relay_actor: Community) -> Relay:
    """Store the subscription (pending) and queue the Follow, in the caller's transaction.

    A rejected subscription asked again sends a new Follow; an existing pending
    or active one is returned as it is.
    """
    repo = RelayRepository(session)
    existing = await repo.get_for_community(community.id, relay_actor.ap_id)
    if existing is not None and existing.state != RelayState.REJECTED:
        return existing
    inbox = relay_actor.inbox_url
    if not inbox:
        raise RelayUnavailable(f"{relay_actor.ap_id} has no inbox")
    follow = await send(session, community, "Follow", PUBLIC, {inbox}, to=[relay_actor.ap_id])
    if existing is not None:
        existing.follow_activity_id = follow["id"]
        existing.inbox_url = inbox
        await repo.set_state(existing, RelayState.PENDING)
        return existing
    return await repo.add(
        local_community_id=community.id,
        actor_id=relay_actor.ap_id,
        inbox_url=inbox,
        name=relay_actor.name,
        follow_activity_id=follow["id"],
    )


async def unsubscribe(session: AsyncSession, community: Community, relay: Relay) -> None:
    """Queue `Undo` of our Follow and forget the relay, in the caller's transaction:
    from then on it receives nothing, whether it followed us back or not."""
    follow = follow_of_public(relay.follow_activity_id, community)
    await send(session, community, "Undo", follow, {relay.inbox_url}, to=[relay.actor_id])
    await RelayRepository(session).delete(relay)
    follows = FollowRepository(session)
    # A LitePub relay follows the community back; that follow ends with the subscription.
    follow_back = await follows.get("in", community.id, relay.actor_id)
    if follow_back is not None:
        await follows.delete(follow_back)


# --- what relays announce ------------------------------------------------------------


def _is_web_url(value: str | None) -> bool:
    if not value or len(value) > 2048:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def _embedded_refusal(obj: Any) -> str | None:
    """What an embedded copy already says against fetching (it can only veto, never vouch)."""
    if not isinstance(obj, dict):
        return None
    object_id = obj.get("id")
    audience = [*_as_list(obj.get("to")), *_as_list(obj.get("cc"))]
    public = any(a in (PUBLIC, "as:Public", "Public") for a in audience)
    if obj.get("type") in ("Note", "Article", "Page") and audience and not public:
        return f"{object_id} is not public"
    author = obj.get("attributedTo")
    if isinstance(author, str) and isinstance(object_id, str) and not same_host(object_id, author):
        return f"{object_id} is on another host than its actor {author}"
    return None


def _is_tombstone(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("type") == "Tombstone"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def fetch_key(object_id: str) -> str:
    return f"{RELAY_FETCH}:{hashlib.sha256(object_id.encode()).hexdigest()}"


async def on_announce(ctx: FederationContext, activity: Activity) -> None:
    """An Announce from a relay we subscribe to queues a fetch of what it names."""
    object_id = activity.object_id
    if not _is_web_url(object_id):
        raise RelayIgnored(f"Announce of {str(object_id)[:200]!r}, which is not a URL")
    assert object_id is not None
    refusal = _embedded_refusal(activity.object)
    async with ctx.sessions() as session:
        relays = RelayRepository(session)
        relay = await relays.active_by_actor(activity.actor)
        if relay is None:
            raise RelayIgnored(f"Announce from {activity.actor}, no relay we subscribe to")
        if refusal is not None:
            raise RelayIgnored(refusal)
        if same_host(object_id, ctx.config.base_url):
            raise RelayIgnored(f"{object_id} is ours")
        if _post_hosts(ctx).get(url_host(object_id) or ""):
            raise RelayIgnored(f"{url_host(object_id)} serves posts, not listings")
        cached = await RemoteListingRepository(session).get_by_ap_id(object_id)
        if _is_tombstone(activity.object) and (cached is None or cached.audience != "public"):
            raise RelayIgnored(f"Delete of {object_id}, no public listing we hold")
        host = url_host(object_id) or ""
        if host_is_blocked(await BlockRepository(session).domains(), host):
            raise RelayIgnored(f"{object_id} is on a blocked domain")
        queued = await enqueue_job(
            session,
            RELAY_FETCH,
            {"object_id": object_id, "relay_id": relay.id},
            dedupe_key=fetch_key(object_id),
            community_id=relay.local_community_id,
            subject=object_id,
        )
        if not queued:
            raise RelayIgnored(f"{object_id} is already being fetched")
        if not await relays.spend_fetch(relay, ctx.config.relay_fetches_per_minute):
            await session.rollback()
            raise RelayIgnored(f"{activity.actor} asked for more fetches than a minute allows")
        await session.commit()


class _Skip(Exception):
    """The fetched object is not one we keep; the job ends, recording why."""


class _Gone(_Skip):
    """The object's own server says it is gone (404, 410): a public copy we hold goes too."""


async def _forget_public_copy(ctx: FederationContext, object_id: str) -> bool:
    """Drop our public copy of `object_id`: its own server no longer serves it to us."""
    async with ctx.sessions() as session:
        listings = RemoteListingRepository(session)
        cached = await listings.get_by_ap_id(object_id)
        if cached is None or cached.audience != Audience.PUBLIC:
            return False
        await listings.remove(object_id)
        await session.commit()
    return True


async def _relay_of(ctx: FederationContext, run: JobRun) -> tuple[Relay, Community]:
    async with ctx.sessions() as session:
        relay = await RelayRepository(session).get(str(run.payload.get("relay_id", "")))
        if relay is None or relay.state != RelayState.ACTIVE:
            raise _Skip("the relay subscription ended")
        viewer = await CommunityRepository(session).get(relay.local_community_id)
        blocked = await BlockRepository(session).domains()
    if viewer is None:
        raise _Skip("the subscribing community no longer exists")
    object_id = str(run.payload.get("object_id", ""))
    if host_is_blocked(blocked, url_host(object_id) or ""):
        raise _Skip(f"{object_id} is on a blocked domain")
    return relay, viewer


async def _fetch_note(ctx: FederationContext, object_id: str, viewer: Community) -> Note:
    """The note from its own server, as that server serves it (never from the relay)."""
    try:
        document = await signed_get(ctx, object_id, viewer, same_host_only=True)
    except (ObjectGone, ObjectNotFound) as exc:
        raise _Gone(f"{object_id} is gone from its server: {exc}") from exc
    except Refused as exc:
        raise _Skip(f"{object_id} could not be fetched: {exc}") from exc
    expected = object_id
    wrapped = document.get("object")
    if document.get("type") in ("Create", "Update") and isinstance(wrapped, dict):
        # An activity's id was announced: its server vouches for the object it embeds,
        # if that object lives there too.
        expected = str(wrapped.get("id", ""))
        if not same_host(expected, object_id):
            raise _Skip(f"{object_id} embeds an object from another host, {expected[:200]}")
        document = {"@context": document.get("@context"), **wrapped}
    try:
        note = parse_note(normalize_activity(document))
    except (VocabError, FederationError) as exc:
        raise _Skip(f"{object_id} is not a listing: {exc}") from exc
    if note.id != expected:
        raise _Skip(f"{object_id} answered with another object, {note.id}")
    if note.kind is None:
        _post_hosts(ctx).put(url_host(object_id) or "", True)
        raise _Skip(f"{object_id} is a post, not a listing")
    if not note.is_public:
        raise _Skip(f"{object_id} is not public")
    if not note.attributed_to or not same_host(note.id, note.attributed_to):
        raise _Skip(f"{object_id} is on another host than its actor {note.attributed_to}")
    return note


async def _over_limit(session: AsyncSession, ctx: FederationContext, origin: Community) -> bool:
    """Whether the mirror already holds as many relayed listings of `origin` as it may
    (a community we follow or partner with is not limited: we asked for its listings)."""
    if await may_receive(session, origin, Audience.PUBLIC):
        return False
    held = await public_listings_from(session, origin.id)
    return held >= ctx.config.relay_max_listings_per_origin


async def mirror_relayed(ctx: FederationContext, note: Note) -> str:
    """Mirror `note` as a public listing of the community that owns it."""
    assert note.attributed_to is not None
    try:
        origin = await resolve_actor(ctx, note.attributed_to)
    except ActorUnavailable as exc:
        raise RetryJob(str(exc)) from exc
    async with ctx.sessions() as session:
        cached = await RemoteListingRepository(session).get_by_ap_id(note.id)
        if cached is None and await _over_limit(session, ctx, origin):
            raise _Skip(f"the mirror holds as many relayed listings of {origin.ap_id} as it may")
        try:
            await mirror_note(
                session, note, origin, Audience.PUBLIC, ctx.config.remote_images_per_source
            )
        except NotMirrored as exc:
            raise _Skip(str(exc)) from exc
        await session.commit()
    return origin.ap_id


def run_relay_fetch(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        object_id = run.payload.get("object_id")
        if not isinstance(object_id, str) or not _is_web_url(object_id):
            raise JobFailed("no object to fetch")
        try:
            _, viewer = await _relay_of(ctx, run)
            note = await _fetch_note(ctx, object_id, viewer)
            origin = await mirror_relayed(ctx, note)
        except _Gone as exc:
            if await _forget_public_copy(ctx, object_id):
                await run.report(removed=object_id)
                return
            log.info("relayed %s ignored: %s", object_id[:200], exc)
            await run.report(ignored=str(exc))
            return
        except _Skip as exc:
            log.info("relayed %s ignored: %s", object_id[:200], exc)
            await run.report(ignored=str(exc))
            return
        await run.report(mirrored=object_id, origin=origin)

    return handle


def relay_handlers(ctx: FederationContext) -> dict[str, JobHandler]:
    return {RELAY_FETCH: run_relay_fetch(ctx)}
