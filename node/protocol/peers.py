"""Learning the communities another node hosts, and following their public listings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation.errors import FederationError
from node.domain import urls
from node.protocol.context import FederationContext
from node.protocol.crawl import enqueue_crawl
from node.protocol.publishing import send
from node.protocol.remote_actors import ActorUnavailable, resolve_actor, signed_get
from storage.models import Community, KnownPeer, utcnow
from storage.repositories.follows import FollowRepository
from storage.repositories.peers import KnownPeerRepository
from storage.states import FollowState

log = logging.getLogger(__name__)
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"


class PeerUnavailable(Exception):
    """The node could not be read; the message says what went wrong."""


@dataclass(frozen=True)
class LearnedPeer:
    base_url: str
    communities: list[Community]


def normalize_peer_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be http(s)://host[:port]")
    return f"{parts.scheme}://{parts.netloc.lower()}"


async def _community_ids(ctx: FederationContext, base_url: str) -> list[str]:
    """Actor ids from the peer's NodeInfo `metadata.communities`."""
    links = await signed_get(ctx, f"{base_url}/.well-known/nodeinfo")
    hrefs = [
        link.get("href")
        for link in links.get("links", [])
        if isinstance(link, dict) and link.get("rel") == NODEINFO_REL
    ]
    if not hrefs or not isinstance(hrefs[0], str):
        raise PeerUnavailable(f"{base_url} publishes no NodeInfo 2.1")
    info = await signed_get(ctx, hrefs[0])
    entries: Any = (info.get("metadata") or {}).get("communities") or []
    ids = [e.get("id") for e in entries if isinstance(e, dict)]
    return [i for i in ids if isinstance(i, str) and i.startswith(base_url + "/")]


async def follow_community(ctx: FederationContext, local: Community, remote: Community) -> None:
    """Send a plain Follow (idempotent: an active or pending follow is left alone)."""
    async with ctx.sessions() as session:
        follows = FollowRepository(session)
        existing = await follows.get("out", local.id, remote.ap_id)
        if existing is not None and existing.state in (FollowState.ACTIVE, FollowState.PENDING):
            return
        inbox = urls.delivery_inbox(remote.inbox_url, remote.shared_inbox_url, fan_out=False)
        activity = await send(
            session, local, "Follow", remote.ap_id, {inbox} if inbox else set(), to=[remote.ap_id]
        )
        await follows.upsert(
            direction="out",
            local_community_id=local.id,
            remote_actor=remote.ap_id,
            follow_activity_id=activity["id"],
            state=FollowState.PENDING,
            remote_inbox=remote.inbox_url,
            remote_shared_inbox=remote.shared_inbox_url,
        )
        await session.commit()


async def learn_peer(ctx: FederationContext, url: str, local: Community) -> LearnedPeer:
    """Read a node's communities and have `local` follow each of them."""
    base_url = normalize_peer_url(url)
    if base_url == ctx.config.base_url:
        raise PeerUnavailable("that is this node")
    try:
        ids = await _community_ids(ctx, base_url)
        communities = [await resolve_actor(ctx, actor_id, refresh=True) for actor_id in ids]
    except (FederationError, ActorUnavailable) as exc:
        await _record(ctx, base_url, local, str(exc))
        raise PeerUnavailable(f"could not read {base_url}: {exc}") from exc
    for remote in communities:
        await follow_community(ctx, local, remote)
    await _record(ctx, base_url, local, None)
    async with ctx.sessions() as session:
        await enqueue_crawl(session, base_url, 0)  # and, from its peers, the network around it
        await session.commit()
    return LearnedPeer(base_url, communities)


async def _record(
    ctx: FederationContext, base_url: str, local: Community, error: str | None
) -> KnownPeer:
    async with ctx.sessions() as session:
        peer = await KnownPeerRepository(session).upsert(base_url, local.id)
        peer.depth, peer.learned_from = 0, None  # a steward's choice: the start of a crawl
        peer.last_checked_at = utcnow()
        peer.last_error = error
        await session.commit()
    return peer
