"""Learning the network: each node lists the nodes it knows, so one peer leads to more.

A node publishes its peers (NodeInfo `metadata.peers`, as base URLs, and
`/api/v1/instance/peers`, the host list Mastodon serves). A `crawl_peer` job
reads one node: its NodeInfo, the communities it hosts (each actor fetched,
which stores its name, place, public counts and `discoverable` flag), and its
peers, of which at most `discovery_hosts_per_round` new ones are recorded one
hop further out and queued for their own crawl, spaced
`discovery_crawl_spacing_seconds` apart, while the hop count stays within
`discovery_max_depth`. What is found becomes a directory entry; nothing is
followed. Every fetch is signed and goes through the address guard.

A `refresh_directory` job, queued by a timer, queues a crawl of every known
node not read for `discovery_refresh_interval_seconds`, and a refresh of
stale actors seen only in activities, so counts and opt-outs stay current.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.errors import FederationError
from federation.hosts import same_host
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobHandler, JobRun, RetryJob, enqueue_job
from node.protocol.remote_actors import ActorUnavailable, resolve_actor, signed_get
from storage.models import Community, KnownPeer, utcnow
from storage.repositories.actors import BlockRepository
from storage.repositories.discovery import DIRECTORY_TYPES
from storage.repositories.peers import KnownPeerRepository

log = logging.getLogger(__name__)

CRAWL_PEER = "crawl_peer"
REFRESH_DIRECTORY = "refresh_directory"
REFRESH_ACTOR = "refresh_actor"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
ACTOR_STALE_AFTER = timedelta(days=1)
ACTORS_PER_REFRESH = 200
MAX_LISTED_PEERS = 1000


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
    """Queue a crawl of one node (caller's transaction); once while one is unfinished."""
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
    links = await signed_get(ctx, f"{base_url}/.well-known/nodeinfo", same_host_only=True)
    hrefs = [
        link.get("href")
        for link in links.get("links", [])
        if isinstance(link, dict) and link.get("rel") == NODEINFO_REL
    ]
    href = hrefs[0] if hrefs else None
    if not isinstance(href, str) or not same_host(href, base_url):
        raise JobFailed(f"{base_url} publishes no NodeInfo 2.1 of its own")
    return await signed_get(ctx, href, same_host_only=True)


def _listed(info: dict[str, Any], key: str) -> list[Any]:
    metadata = info.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value[:MAX_LISTED_PEERS] if isinstance(value, list) else []


def community_ids(info: dict[str, Any], base_url: str) -> list[str]:
    """Actor ids from `metadata.communities` that are on the node itself."""
    ids = [entry.get("id") for entry in _listed(info, "communities") if isinstance(entry, dict)]
    return [i for i in ids if isinstance(i, str) and base_url_of(i) == base_url]


def peer_urls(info: dict[str, Any]) -> list[str]:
    """Base URLs from `metadata.peers`, each once, in the order given."""
    seen: dict[str, None] = {}
    for entry in _listed(info, "peers"):
        url = base_url_of(entry) if isinstance(entry, str) else None
        if url is not None:
            seen.setdefault(url, None)
    return list(seen)


async def _learn_communities(ctx: FederationContext, ids: list[str]) -> tuple[int, list[str]]:
    learned, errors = 0, []
    for actor_id in ids[: ctx.config.discovery_communities_per_node]:
        try:
            await resolve_actor(ctx, actor_id, refresh=True)
            learned += 1
        except (ActorUnavailable, ValueError) as exc:
            errors.append(str(exc)[:200])
    return learned, errors


async def _record_peers(
    ctx: FederationContext, source: str, depth: int, urls: list[str]
) -> list[str]:
    """Record up to the per-round number of nodes we did not know, one hop further out."""
    config = ctx.config
    if depth >= config.discovery_max_depth or config.discovery_hosts_per_round == 0:
        return []
    added: list[str] = []
    async with ctx.sessions() as session:
        peers, blocks = KnownPeerRepository(session), BlockRepository(session)
        for url in urls:
            if len(added) >= config.discovery_hosts_per_round:
                break
            if url == config.base_url or await peers.get(url) is not None:
                continue
            if await blocks.is_blocked(urlsplit(url).netloc):
                continue
            peer = await peers.upsert(url, None)
            peer.depth, peer.learned_from = depth + 1, source
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
        listed = community_ids(info, base_url)
        async with ctx.sessions() as session:
            cached = await _cached_communities(session, base_url)
        # A community it no longer lists may have opted out: reading its actor says so.
        ids = list(dict.fromkeys([*listed, *cached]))
        learned, errors = await _learn_communities(ctx, ids)
        added = await _record_peers(ctx, base_url, depth, peer_urls(info))
        await _note_result(ctx, base_url, "; ".join(errors)[:500] or None)
        await run.report(communities=learned, failed=len(errors), new_peers=added)

    return handle


async def _cached_communities(session: AsyncSession, base_url: str) -> list[str]:
    result = await session.execute(
        select(Community.ap_id)
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


def run_refresh_directory(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        now = utcnow()
        due_before = now - timedelta(seconds=ctx.config.discovery_refresh_interval_seconds)
        async with ctx.sessions() as session:
            crawls = 0
            peers: list[KnownPeer] = list(await KnownPeerRepository(session).list())
            for peer in peers:
                if peer.last_checked_at is None or peer.last_checked_at < due_before:
                    crawls += await enqueue_crawl(session, peer.base_url, peer.depth)
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
