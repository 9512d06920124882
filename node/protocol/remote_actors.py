"""Remote actors: fetched once (signed), cached in `communities`, refreshed when stale."""

from __future__ import annotations

import time
import weakref
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.errors import FederationError
from federation.hosts import same_host
from federation.http_client import signed_get_json, signed_get_json_array
from federation.jsonld import normalize_activity
from federation.vocab import Actor, VocabError, parse_actor
from node.protocol.context import FederationContext
from node.protocol.key_resolver import actor_to_data
from node.protocol.ttl_cache import TtlCache
from storage.models import Community, utcnow
from storage.repositories import CommunityRepository
from storage.repositories.actors import RemoteActorRepository

ACTOR_MAX_AGE = timedelta(days=1)
SENDER_CACHE_SECONDS = 30.0
SENDER_CACHE_SIZE = 2048


class ActorUnavailable(Exception):
    """The actor could not be fetched or is not a usable actor document."""


async def signed_get(
    ctx: FederationContext,
    url: str,
    viewer: Community | None = None,
    *,
    same_host_only: bool = False,
) -> dict[str, Any]:
    """GET as `viewer` (default: the node's first community), as Mastodon's secure mode wants.

    The signature never follows a redirect to another host; with
    `same_host_only` such a redirect is refused (see `signed_get_json`).
    """
    if viewer is None:
        viewer = await default_viewer(ctx)
    return await signed_get_json(
        ctx.http,
        url,
        key_id=viewer.key_id if viewer else None,
        private_key_pem=viewer.private_key_pem if viewer else None,
        allow_private=ctx.config.allow_private_addresses,
        limits=ctx.limits,
        same_host_only=same_host_only,
    )


async def default_viewer(ctx: FederationContext) -> Community | None:
    """The community our fetches are signed as when no particular one asks: the first."""
    async with ctx.sessions() as session:
        locals_ = await CommunityRepository(session).list_local()
    return locals_[0] if locals_ else None


async def public_get(ctx: FederationContext, url: str) -> dict[str, Any]:
    """GET a document every server publishes to anyone (NodeInfo), unsigned: a
    signature would prove nothing and cost an RSA operation per request.
    A redirect to another host is refused."""
    return await signed_get_json(
        ctx.http,
        url,
        key_id=None,
        private_key_pem=None,
        allow_private=ctx.config.allow_private_addresses,
        limits=ctx.limits,
        same_host_only=True,
    )


async def public_get_array(ctx: FederationContext, url: str, *, max_bytes: int) -> list[Any]:
    """GET a public JSON array of at most `max_bytes` from `url`'s own host, unsigned
    (Mastodon's peers list; see `signed_get_json_array`)."""
    return await signed_get_json_array(
        ctx.http,
        url,
        key_id=None,
        private_key_pem=None,
        allow_private=ctx.config.allow_private_addresses,
        limits=replace(
            ctx.limits, max_response_bytes=min(max_bytes, ctx.limits.max_response_bytes)
        ),
    )


async def fetch_actor(ctx: FederationContext, url: str) -> Actor:
    """The actor document at `url`, served by `url`'s own host and naming itself `url`.

    `parse_actor` refuses an actor whose inbox is on another host, so nothing
    cached here can make us deliver elsewhere.
    """
    try:
        document = await signed_get(ctx, url, same_host_only=True)
        actor = parse_actor(normalize_activity(document))
    except (FederationError, VocabError) as exc:
        raise ActorUnavailable(f"{url}: {exc}") from exc
    if actor.id != url:
        raise ActorUnavailable(f"{url} answered with a different actor id {actor.id}")
    return actor


def _inboxes_on_host(cached: Community) -> bool:
    """False for a row cached before inboxes had to be on the actor's host: refetch it."""
    inboxes = [url for url in (cached.inbox_url, cached.shared_inbox_url) if url]
    return all(same_host(url, cached.ap_id) for url in inboxes)


async def resolve_actor(
    ctx: FederationContext, actor_id: str, *, refresh: bool = False
) -> Community:
    """The cached actor row, fetching it when unknown, stale or when asked to."""
    async with ctx.sessions() as session:
        cached = await CommunityRepository(session).get_by_ap_id(actor_id)
    if cached is not None and cached.is_local:
        return cached
    fresh = (
        cached is not None
        and cached.fetched_at is not None
        and (utcnow() - cached.fetched_at < ACTOR_MAX_AGE)
        and _inboxes_on_host(cached)
    )
    if cached is not None and fresh and not refresh:
        return cached
    actor = await fetch_actor(ctx, actor_id)
    async with ctx.sessions() as session:
        row = await RemoteActorRepository(session).upsert(actor_to_data(actor))
        await session.commit()
    return row


_senders: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], TtlCache[Community]] = (
    weakref.WeakKeyDictionary()
)


async def resolve_sender(ctx: FederationContext, actor_id: str) -> Community:
    """`resolve_actor` for the inbox's busiest path, remembered for half a minute.

    A server delivering a burst of listings names the same actor each time;
    the row it resolves to is only read (its id, its id's host) to decide
    whose listing a note is, so a copy at most `SENDER_CACHE_SECONDS` old
    serves as well as a fresh read. Never hand it to a session: it is shared.
    """
    cache = _senders.get(ctx.sessions)
    if cache is None:
        cache = _senders[ctx.sessions] = TtlCache(
            SENDER_CACHE_SECONDS, SENDER_CACHE_SIZE, time.monotonic
        )
    cached = cache.get(actor_id)
    if cached is None:
        cached = await resolve_actor(ctx, actor_id)
        cache.put(actor_id, cached)
    return cached
