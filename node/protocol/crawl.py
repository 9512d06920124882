"""Learning the network: each node lists the nodes it knows, so one peer leads to more.

A node publishes its peers (NodeInfo `metadata.peers`, as base URLs, and
`/api/v1/instance/peers`, the host list Mastodon serves). A `crawl_peer` job
reads one node: its NodeInfo, the communities it hosts, and its peers (from
NodeInfo, or, when that lists none, from the node's Mastodon-style peers
array). What is found becomes a directory entry; nothing is followed. Actors
are fetched signed (servers in Mastodon's secure mode want that); NodeInfo and
peer lists, public by definition, unsigned. Every fetch goes through the
address guard and stays on the node's own host.

What one node does stays bounded however large the network grows:

- a crawl records at most `discovery_hosts_per_round` new nodes, one hop
  further out, and only while the hop count is within `discovery_max_depth`,
  so a steward's one peer leads to at most 1 + h + h² crawls at once;
- the node keeps at most `discovery_max_known_peers` nodes; past that it
  learns no new ones (the ones it has keep being refreshed);
- the crawls a job queues are spaced `discovery_crawl_spacing_seconds` apart,
  and a node already known, or already queued, is not queued again (a shorter
  way to a known node only lowers its recorded depth);
- a crawl re-reads a community's actor only when its NodeInfo entry changed,
  the cached copy is a day old, or the node stopped listing it (it may have
  opted out); otherwise a re-crawl costs two requests.

A `refresh_directory` job, queued by a timer every
`discovery_refresh_interval_seconds`, queues crawls of the known nodes not
read for that long, at most `discovery_crawls_per_round` of them (never-read
ones first, then a draw in which the longer unread are the likelier, so all
come round and no two nodes keep picking the same ones), spaced like the
others, and a refresh of stale actors seen only in activities, so counts and
opt-outs stay current.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.address_guard import check_url
from federation.errors import FederationError
from federation.hosts import same_host
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobHandler, JobRun, RetryJob, enqueue_job
from node.protocol.remote_actors import (
    ActorUnavailable,
    public_get,
    public_get_array,
    resolve_actor,
)
from storage.models import Community, KnownPeer, utcnow
from storage.repositories.actors import BlockRepository
from storage.repositories.discovery import DIRECTORY_TYPES
from storage.repositories.peers import KnownPeerRepository

log = logging.getLogger(__name__)
_shuffle = random.Random()

CRAWL_PEER = "crawl_peer"
REFRESH_DIRECTORY = "refresh_directory"
REFRESH_ACTOR = "refresh_actor"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
ACTOR_STALE_AFTER = timedelta(days=1)
ACTORS_PER_REFRESH = 200
MAX_LISTED_PEERS = 1000
INSTANCE_PEERS_PATH = "/api/v1/instance/peers"
INSTANCE_PEERS_MAX_BYTES = 256 * 1024  # a thousand long host names fit several times over
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?::[0-9]{1,5})?",
    re.IGNORECASE,
)


def base_url_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


async def enqueue_crawl(
    session: AsyncSession, base_url: str, depth: int, *, delay_seconds: float = 0
) -> bool:
    """Queue a crawl of one node (caller's transaction); once while one is unfinished,
    so a node several peers list, or a refresh during a crawl, adds nothing twice."""
    return await enqueue_job(
        session,
        CRAWL_PEER,
        {"base_url": base_url, "depth": depth},
        dedupe_key=f"{CRAWL_PEER}:{base_url}",
        subject=base_url,
        run_at=utcnow() + timedelta(seconds=delay_seconds) if delay_seconds else None,
    )


async def enqueue_directory_refresh(session: AsyncSession) -> bool:
    return await enqueue_job(session, REFRESH_DIRECTORY, {}, dedupe_key=REFRESH_DIRECTORY)


async def _nodeinfo(ctx: FederationContext, base_url: str) -> dict[str, Any]:
    """The node's NodeInfo 2.1, read only from the node's own host."""
    links = await public_get(ctx, f"{base_url}/.well-known/nodeinfo")
    hrefs = [
        link.get("href")
        for link in links.get("links", [])
        if isinstance(link, dict) and link.get("rel") == NODEINFO_REL
    ]
    href = hrefs[0] if hrefs else None
    if not isinstance(href, str) or not same_host(href, base_url):
        raise JobFailed(f"{base_url} publishes no NodeInfo 2.1 of its own")
    return await public_get(ctx, href)


def _listed(info: dict[str, Any], key: str) -> list[Any]:
    metadata = info.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value[:MAX_LISTED_PEERS] if isinstance(value, list) else []


@dataclass(frozen=True)
class ListedCommunity:
    """A community as a node's NodeInfo lists it: enough to tell whether it changed."""

    id: str
    name: Any = None
    offers: Any = None
    needs: Any = None

    def matches(self, cached: Community) -> bool:
        return (self.name, self.offers, self.needs) == (
            cached.name,
            cached.public_offer_count,
            cached.public_need_count,
        )


def listed_communities(info: dict[str, Any], base_url: str) -> list[ListedCommunity]:
    """Entries of `metadata.communities` whose actor is on the node itself, each once."""
    found: dict[str, ListedCommunity] = {}
    for entry in _listed(info, "communities"):
        actor_id = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(actor_id, str) and base_url_of(actor_id) == base_url:
            found.setdefault(
                actor_id,
                ListedCommunity(
                    actor_id,
                    entry.get("name"),
                    entry.get("publicOfferCount"),
                    entry.get("publicNeedCount"),
                ),
            )
    return list(found.values())


def community_ids(info: dict[str, Any], base_url: str) -> list[str]:
    """Actor ids from `metadata.communities` that are on the node itself."""
    return [entry.id for entry in listed_communities(info, base_url)]


def peer_urls(info: dict[str, Any]) -> list[str]:
    """Base URLs from `metadata.peers`, each once, in the order given."""
    seen: dict[str, None] = {}
    for entry in _listed(info, "peers"):
        url = base_url_of(entry) if isinstance(entry, str) else None
        if url is not None:
            seen.setdefault(url, None)
    return list(seen)


def peer_hosts(entries: list[Any], scheme: str) -> list[str]:
    """Base URLs from a Mastodon peers array (`host[:port]` names), each once, in order.

    The hosts take the scheme of the node that listed them (https, except on
    a loopback test network); anything that is not a bare host name is skipped.
    """
    seen: dict[str, None] = {}
    for entry in entries[:MAX_LISTED_PEERS]:
        if not isinstance(entry, str) or not _HOST.fullmatch(entry):
            continue
        url = base_url_of(f"{scheme}://{entry}")
        if url is not None:
            seen.setdefault(url, None)
    return list(seen)


async def _instance_peers(ctx: FederationContext, base_url: str) -> tuple[list[str], str | None]:
    """The node's `/api/v1/instance/peers`, bounded in bytes and entries; ([], why) on failure."""
    try:
        entries = await public_get_array(
            ctx, base_url + INSTANCE_PEERS_PATH, max_bytes=INSTANCE_PEERS_MAX_BYTES
        )
    except FederationError as exc:
        return [], f"peers list: {str(exc)[:200]}"
    return peer_hosts(entries, urlsplit(base_url).scheme), None


async def _learn_communities(
    ctx: FederationContext, listed: list[ListedCommunity], cached: list[Community]
) -> tuple[int, int, list[str]]:
    """Read the actors that may have changed; returns (read, unchanged, errors).

    An actor is read when it is new to us, its listed name or counts differ
    from our copy, our copy is a day old, or the node no longer lists it (it
    may have opted out, which only its actor can tell us).
    """
    now = utcnow()

    def fresh(copy: Community | None) -> bool:
        return (
            copy is not None
            and copy.fetched_at is not None
            and (now - copy.fetched_at < ACTOR_STALE_AFTER)
        )

    by_id = {community.ap_id: community for community in cached}
    due: list[str] = []
    unchanged = 0
    for entry in listed:
        copy = by_id.pop(entry.id, None)
        if copy is not None and fresh(copy) and entry.matches(copy):
            unchanged += 1
        else:
            due.append(entry.id)
    # Cached from this node but no longer listed: read again, unless we already
    # know (and recently learned) that it opted out.
    for copy in by_id.values():
        if copy.is_discoverable or not fresh(copy):
            due.append(copy.ap_id)
        else:
            unchanged += 1
    read, errors = 0, []
    for actor_id in due[: ctx.config.discovery_communities_per_node]:
        try:
            await resolve_actor(ctx, actor_id, refresh=True)
            read += 1
        except (ActorUnavailable, ValueError) as exc:
            errors.append(str(exc)[:200])
    return read, unchanged, errors


async def _may_learn(ctx: FederationContext, depth: int) -> bool:
    """Whether a crawl at `depth` may record new nodes: hops and the node's own limit."""
    config = ctx.config
    if depth >= config.discovery_max_depth or config.discovery_hosts_per_round == 0:
        return False
    async with ctx.sessions() as session:
        return await KnownPeerRepository(session).count() < config.discovery_max_known_peers


async def _guarded(ctx: FederationContext, url: str) -> bool:
    """The address guard, before a listed node takes one of our limited places."""
    try:
        await check_url(url, allow_private=ctx.config.allow_private_addresses)
    except FederationError:  # refused, or a name that does not resolve (offered again later)
        return False
    return True


async def _record_peers(
    ctx: FederationContext, source: str, depth: int, urls: list[str]
) -> list[str]:
    """Record up to the per-round number of nodes we did not know, chosen at random, one
    hop further out, within the node's limit on known nodes; a known node reached by fewer
    hops gets the shorter depth. Two crawls listing the same new node record it once."""
    config = ctx.config
    added: list[str] = []
    async with ctx.sessions() as session:
        peers, blocks = KnownPeerRepository(session), BlockRepository(session)
        room = config.discovery_max_known_peers - await peers.count()
        known = await peers.depths(urls)
        await peers.shorten(source, depth + 1, [u for u, d in known.items() if d > depth + 1])
        # In no particular order: lists are sorted, and if every node took the first few
        # new ones, the same nodes would be read by everyone, and (refreshed least
        # recently read first) go on being read by everyone in the same round.
        limit = min(config.discovery_hosts_per_round, room)
        chosen: list[str] = []
        for url in _shuffle.sample(urls, len(urls)):
            if len(chosen) >= limit:
                break
            if url == config.base_url or url in known:
                continue
            if await blocks.is_blocked(urlsplit(url).netloc) or not await _guarded(ctx, url):
                continue
            chosen.append(url)
        # Recorded in one order (sorted), so two crawls recording overlapping nodes at
        # once wait for each other instead of deadlocking on each other's rows.
        for url in sorted(chosen):
            if not await peers.add_learned(url, depth + 1, source):
                continue  # another crawl recorded it a moment ago, and queued its crawl
            spacing = config.discovery_crawl_spacing_seconds * (len(added) + 1)
            await enqueue_crawl(session, url, depth + 1, delay_seconds=spacing)
            added.append(url)
        await session.commit()
    return added


async def _note_result(ctx: FederationContext, base_url: str, error: str | None) -> None:
    async with ctx.sessions() as session:
        peer = await KnownPeerRepository(session).get(base_url)
        if peer is not None:
            peer.last_checked_at = utcnow()
            peer.last_error = error
            await session.commit()


def run_crawl_peer(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        base_url = base_url_of(str(run.payload.get("base_url", "")))
        depth = run.payload.get("depth", 0)
        if base_url is None or not isinstance(depth, int) or depth < 0:
            raise JobFailed("no node to crawl")
        async with ctx.sessions() as session:
            if await BlockRepository(session).is_blocked(urlsplit(base_url).netloc):
                await run.report(skipped="domain is blocked")
                return
        try:
            info = await _nodeinfo(ctx, base_url)
        except FederationError as exc:
            await _note_result(ctx, base_url, str(exc)[:500])
            raise RetryJob(str(exc)) from exc
        async with ctx.sessions() as session:
            cached = await _cached_communities(session, base_url)
        read, unchanged, errors = await _learn_communities(
            ctx, listed_communities(info, base_url), cached
        )
        added: list[str] = []
        if await _may_learn(ctx, depth):
            urls = peer_urls(info)
            if not urls:  # not one of ours, perhaps: Mastodon and others list hosts here
                urls, error = await _instance_peers(ctx, base_url)
                errors.extend([error] if error else [])
            added = await _record_peers(ctx, base_url, depth, urls)
        await _note_result(ctx, base_url, "; ".join(errors)[:500] or None)
        await run.report(communities=read, unchanged=unchanged, failed=len(errors), new_peers=added)

    return handle


async def _cached_communities(session: AsyncSession, base_url: str) -> list[Community]:
    result = await session.execute(
        select(Community)
        .where(
            Community.is_local.is_(False),
            Community.base_url == base_url,
            Community.actor_type.in_(DIRECTORY_TYPES),
        )
        .order_by(Community.fetched_at)
    )
    return list(result.scalars())


async def _stale_actors(session: AsyncSession, now: Any) -> list[str]:
    """Remote communities not fetched for a day, oldest first, a bounded number a round."""
    result = await session.execute(
        select(Community.ap_id)
        .where(
            Community.is_local.is_(False),
            Community.actor_type.in_(DIRECTORY_TYPES),
            (Community.fetched_at.is_(None)) | (Community.fetched_at < now - ACTOR_STALE_AFTER),
        )
        .order_by(Community.fetched_at)
        .limit(ACTORS_PER_REFRESH)
    )
    return list(result.scalars())


def pick_due(
    due: Sequence[KnownPeer], limit: int, now: datetime, rng: random.Random
) -> list[KnownPeer]:
    """The nodes a refresh round reads: never-read ones first, then a draw weighted by
    how long ago each was read, so the longer unread the likelier.

    Not simply the least recently read: nodes that learned the network together read
    their peers in the same order, and would go on all reading the same few in the
    same round, whose load would then grow with the network. Each node drawing its
    own keeps what one node serves a round near `limit` crawls whatever its size.
    """
    fresh = [peer for peer in due if peer.last_checked_at is None]
    if len(fresh) >= limit:
        return fresh[:limit]

    def key(peer: KnownPeer) -> float:  # Efraimidis-Spirakis: log(u) / weight
        assert peer.last_checked_at is not None
        age = max((now - peer.last_checked_at).total_seconds(), 1.0)
        return math.log(1.0 - rng.random()) / age

    read = [peer for peer in due if peer.last_checked_at is not None]
    return fresh + sorted(read, key=key, reverse=True)[: limit - len(fresh)]


def run_refresh_directory(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        now = utcnow()
        due_before = now - timedelta(seconds=ctx.config.discovery_refresh_interval_seconds)
        config = ctx.config
        async with ctx.sessions() as session:
            crawls = 0
            due = await KnownPeerRepository(session).due(due_before)
            for peer in pick_due(due, config.discovery_crawls_per_round, now, _shuffle):
                spacing = config.discovery_crawl_spacing_seconds * crawls
                crawls += await enqueue_crawl(
                    session, peer.base_url, peer.depth, delay_seconds=spacing
                )
            actors = 0
            for actor_id in await _stale_actors(session, now):
                actors += await enqueue_job(
                    session,
                    REFRESH_ACTOR,
                    {"actor_id": actor_id},
                    dedupe_key=f"{REFRESH_ACTOR}:{actor_id}",
                    subject=actor_id,
                )
            await session.commit()
        await run.report(crawls_queued=crawls, actors_queued=actors)

    return handle


def crawl_handlers(ctx: FederationContext) -> dict[str, JobHandler]:
    return {CRAWL_PEER: run_crawl_peer(ctx), REFRESH_DIRECTORY: run_refresh_directory(ctx)}
