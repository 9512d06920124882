"""Relay subscriptions as stewards manage them, for the JSON API and the federation page.

A subscription belongs to the steward's community: that community follows the
relay, and its public listings (never partner-only or community-only ones) go
to the relay once it accepts. What relays announce lands in the shared mirror.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from node.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from node.protocol.context import FederationContext
from node.protocol.relays import RelayUnavailable, find_relay_actor, subscribe, unsubscribe
from storage.models import Member, Relay
from storage.repositories.relays import RelayRepository
from storage.states import RelayState

MAX_URL_LENGTH = 2048


def _require_steward(member: Member) -> None:
    if not member.is_steward:
        raise Forbidden("stewards only")


def relay_url(text: str) -> str:
    """The address a steward typed, checked: an http(s) URL of at most 2048 characters."""
    url = text.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed(
            "give the relay's actor or inbox URL, such as https://relay.example/actor"
        )
    return url


async def add_relay(
    ctx: FederationContext, session: AsyncSession, member: Member, url: str
) -> Relay:
    """Subscribe the steward's community to the relay at `url` (its actor or its inbox).

    Reading the relay's actor is one or two bounded fetches; the Follow itself is
    queued and goes out once this transaction commits.
    """
    _require_steward(member)
    url = relay_url(url)
    try:
        actor = await find_relay_actor(ctx, url)
    except RelayUnavailable as exc:
        raise BadRequest(f"no relay could be read at {url}: {exc}") from exc
    if actor.is_local:
        raise ValidationFailed("a community of this node is not a relay")
    existing = await RelayRepository(session).get_for_community(member.community_id, actor.ap_id)
    if existing is not None and existing.state != RelayState.REJECTED:
        raise Conflict(f"the subscription to {actor.ap_id} is already {existing.state}")
    try:
        return await subscribe(session, member.community, actor)
    except RelayUnavailable as exc:
        raise BadRequest(str(exc)) from exc
    except IntegrityError as exc:
        # Two stewards subscribing at once: one wins, the other's transaction is void.
        raise Conflict(f"the community is already subscribing to {actor.ap_id}") from exc


async def list_relays(session: AsyncSession, member: Member) -> Sequence[Relay]:
    _require_steward(member)
    return await RelayRepository(session).list_for_community(member.community_id)


async def remove_relay(session: AsyncSession, member: Member, relay_id: str) -> Relay:
    """Unsubscribe: `Undo` of our Follow is queued, and the relay gets nothing more."""
    _require_steward(member)
    relay = await RelayRepository(session).get(relay_id)
    if relay is None or relay.local_community_id != member.community_id:
        raise NotFound("no such relay subscription")
    await unsubscribe(session, member.community, relay)
    return relay
