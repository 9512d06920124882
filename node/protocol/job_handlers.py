"""The kinds of background job this node runs, and how each is asked for.

- `backfill`: page what one remote community shares with one of ours into
  the mirror (after a follow is accepted, a partnership activates, and on
  every reconciliation round).
- `reconcile`: the periodic repair: queue a backfill for every partner and
  followed community, a refresh for every stale actor, prune finished rows,
  and re-analyse the listing tables when their size moved by a fifth.
- `refresh_actor`: fetch a remote actor document again (name, keys, counts).
- `crawl_peer`, `refresh_directory`: learning the network (`node.protocol.crawl`).
- `fetch_image`: fetch and store our copy of a mirrored listing's photo
  (`node.protocol.remote_media`).
- `partner_push`, `partner_withdraw`: queue a `Create` (a new partnership)
  or a `Delete` (one that ended) of each of our partner-only listings for
  the partner, a page at a time (`node.protocol.partner_sharing`).
- `relay_fetch`: fetch an object a relay announced from its own server and
  mirror it if its community owns it (`node.protocol.relays`).

Each is queued once per piece of work (`dedupe_key`), so a burst of Accepts
or a reconciliation round during a running backfill adds nothing twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import CONFIG
from node.protocol.context import FederationContext
from node.protocol.crawl import REFRESH_ACTOR, crawl_handlers
from node.protocol.jobs import JobFailed, JobHandler, JobRun, RetryJob, enqueue_job
from node.protocol.mirror import SyncLimits, SyncProgress, backfill
from node.protocol.partner_sharing import partner_sharing_handlers
from node.protocol.relays import relay_handlers
from node.protocol.remote_actors import ActorUnavailable, resolve_actor
from node.protocol.remote_media import media_handlers, sweep_media
from storage.dialect import refresh_statistics
from storage.models import Community, utcnow
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from storage.repositories.jobs import JobRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.retention import prune_finished
from storage.states import FollowState

log = logging.getLogger(__name__)

BACKFILL = "backfill"
RECONCILE = "reconcile"
BROWSED_TABLES = ("remote_listings", "listings")
"""Tables whose planner statistics the reconcile job keeps fresh (browse depends on them)."""
KEEP_FINISHED = timedelta(days=14)
ACTOR_STALE_AFTER = timedelta(days=1)
REPORT_EVERY_SECONDS = 1.0
"""How often a running backfill stores its progress (which also renews its lease)."""


def backfill_key(local: Community, remote: Community) -> str:
    return f"{BACKFILL}:{local.id}:{remote.id}"


async def enqueue_backfill(session: AsyncSession, local: Community, remote: Community) -> bool:
    """Ask for `remote`'s shared listings to be mirrored for `local` (caller's transaction)."""
    return await enqueue_job(
        session,
        BACKFILL,
        {"local_id": local.id, "remote_id": remote.id},
        dedupe_key=backfill_key(local, remote),
        community_id=local.id,
        subject=remote.ap_id,
    )


async def cancel_backfill(session: AsyncSession, local: Community, remote: Community) -> None:
    """The source went away (partnership ended, unfollowed): stop mirroring it."""
    await JobRepository(session).cancel(backfill_key(local, remote), "no longer shared with us")


async def enqueue_reconcile(session: AsyncSession) -> bool:
    return await enqueue_job(session, RECONCILE, {}, dedupe_key=RECONCILE)


def sync_limits(ctx: FederationContext) -> SyncLimits:
    """Per-source limits, from the node's configuration."""
    config = ctx.config
    return SyncLimits(
        max_pages=config.backfill_max_pages,
        max_items=config.backfill_max_items,
        max_bytes=config.backfill_max_bytes,
    )


async def _pair(ctx: FederationContext, run: JobRun) -> tuple[Community, Community]:
    async with ctx.sessions() as session:
        communities = CommunityRepository(session)
        local = await communities.get(int(run.payload.get("local_id", 0)))
        remote = await communities.get(int(run.payload.get("remote_id", 0)))
    if local is None or remote is None or not local.is_local or remote.is_local:
        raise JobFailed("the communities this job was for no longer exist")
    return local, remote


async def _still_shared(ctx: FederationContext, local: Community, remote: Community) -> bool:
    """A backfill is for an active partnership or a follow that is pending or active."""
    async with ctx.sessions() as session:
        if await PartnershipRepository(session).active_between(local.id, remote.ap_id):
            return True
        follow = await FollowRepository(session).get("out", local.id, remote.ap_id)
    return follow is not None and follow.state in (FollowState.PENDING, FollowState.ACTIVE)


def run_backfill(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        local, remote = await _pair(ctx, run)
        if not await _still_shared(ctx, local, remote):
            await run.report(skipped="no longer shared with us")
            return
        limits = sync_limits(ctx)
        run.progress.clear()

        last_report = 0.0

        async def report(progress: SyncProgress) -> None:
            # Every page would cost a commit each (an fsync on PostgreSQL) and
            # half the rate; stewards see progress within a second all the same.
            nonlocal last_report
            now = time.monotonic()
            if now - last_report >= REPORT_EVERY_SECONDS or progress.stopped_by is not None:
                last_report = now
                await run.report(current=asdict(progress))

        try:
            done = await backfill(ctx, remote, local, limits=limits, report=report)
        except ActorUnavailable as exc:
            raise RetryJob(str(exc)) from exc
        run.progress.pop("current", None)
        await run.report(**{audience: asdict(p) for audience, p in done.items()})

    return handle


def run_refresh_actor(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        actor_id = run.payload.get("actor_id")
        if not isinstance(actor_id, str):
            raise JobFailed("no actor id")
        try:
            await resolve_actor(ctx, actor_id, refresh=True)
        except ActorUnavailable as exc:
            raise RetryJob(str(exc)) from exc

    return handle


async def _sources(session: AsyncSession) -> list[tuple[Community, Community]]:
    """(local, remote) pairs: every active partnership and every accepted follow."""
    pairs = {
        (p.local_community_id, p.remote_community_id): (p.local_community, p.remote_community)
        for p in await PartnershipRepository(session).all_active()
    }
    communities = CommunityRepository(session)
    for local in await communities.list_local():
        for follow in await FollowRepository(session).following_from(local.id):
            remote = await communities.get_by_ap_id(follow.remote_actor)
            if remote is not None and follow.state == FollowState.ACTIVE:
                pairs.setdefault((local.id, remote.id), (local, remote))
    return list(pairs.values())


def run_reconcile(ctx: FederationContext) -> JobHandler:
    async def handle(run: JobRun) -> None:
        now = utcnow()
        async with ctx.sessions() as session:
            queued = 0
            refreshed: set[str] = set()
            for local, remote in await _sources(session):
                queued += await enqueue_backfill(session, local, remote)
                stale = remote.fetched_at is None or now - remote.fetched_at > ACTOR_STALE_AFTER
                if stale and remote.ap_id not in refreshed:
                    refreshed.add(remote.ap_id)
                    await enqueue_job(
                        session,
                        REFRESH_ACTOR,
                        {"actor_id": remote.ap_id},
                        dedupe_key=f"{REFRESH_ACTOR}:{remote.ap_id}",
                        subject=remote.ap_id,
                    )
            deliveries, entries = await prune_finished(session, now - KEEP_FINISHED)
            jobs = await JobRepository(session).prune_finished(now - KEEP_FINISHED)
            await session.commit()
            analysed = [t for t in BROWSED_TABLES if await refresh_statistics(session, t)]
            await session.commit()
        stray = await sweep_media(ctx)
        await run.report(
            backfills_queued=queued,
            actors_refreshed=len(refreshed),
            pruned={"deliveries": deliveries, "inbox": entries, "jobs": jobs, "media": stray},
            analysed=analysed,
        )

    return handle


def job_handlers(app: web.Application) -> dict[str, JobHandler]:
    """The table the job worker dispatches on, bound to this app's resources."""
    ctx = FederationContext.from_app(app)
    return {
        BACKFILL: run_backfill(ctx),
        REFRESH_ACTOR: run_refresh_actor(ctx),
        RECONCILE: run_reconcile(ctx),
        **crawl_handlers(ctx),
        **media_handlers(ctx),
        **relay_handlers(ctx),
        **partner_sharing_handlers(ctx),
    }


def reconcile_interval(app: web.Application) -> float:
    return float(app[CONFIG].reconcile_interval_seconds)


def directory_refresh_interval(app: web.Application) -> float:
    return float(app[CONFIG].discovery_refresh_interval_seconds)
