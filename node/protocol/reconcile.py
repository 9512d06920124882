"""Periodic repair: re-page what partners and followed communities share with us.

Deliveries are durable, but a peer may have lost its queue, or a Delete may
have been refused while we were blocked; paging the whole collection and
dropping what is no longer listed converges the mirror either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from federation.errors import FederationError
from node.appkeys import CONFIG
from node.protocol.context import FederationContext
from node.protocol.mirror import backfill
from node.protocol.remote_actors import ActorUnavailable
from storage.models import Community, utcnow
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.retention import prune_finished

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = timedelta(hours=1)
KEEP_FINISHED = timedelta(days=14)


async def _sources(ctx: FederationContext) -> list[tuple[Community, Community]]:
    """(remote, local) pairs: every active partnership and every accepted follow."""
    async with ctx.sessions() as session:
        pairs = {
            (p.remote_community_id, p.local_community_id): (p.remote_community, p.local_community)
            for p in await PartnershipRepository(session).all_active()
        }
        communities = CommunityRepository(session)
        for local in await communities.list_local():
            for follow in await FollowRepository(session).following_from(local.id):
                remote = await communities.get_by_ap_id(follow.remote_actor)
                if remote is not None and follow.state == "active":
                    pairs.setdefault((remote.id, local.id), (remote, local))
    return list(pairs.values())


async def reconcile_once(ctx: FederationContext) -> int:
    """One full pass; returns how many listings the mirrors hold afterwards."""
    total = 0
    for remote, local in await _sources(ctx):
        try:
            total += await backfill(ctx, remote, local)
        except (FederationError, ActorUnavailable) as exc:
            log.info("reconciling %s failed, will retry next round: %s", remote.ap_id, exc)
    async with ctx.sessions() as session:
        pruned = await prune_finished(session, utcnow() - KEEP_FINISHED)
        await session.commit()
    log.info("reconciled mirrors (%d listings); pruned %s finished rows", total, pruned)
    return total


async def reconcile_ctx(app: web.Application) -> AsyncIterator[None]:
    seconds = app[CONFIG].extra.get("reconcile_interval_seconds", DEFAULT_INTERVAL.seconds)
    interval = float(seconds) if isinstance(seconds, int | float) else 3600.0

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await reconcile_once(FederationContext.from_app(app))
            except Exception:
                log.exception("reconciliation round failed")

    task = asyncio.create_task(loop(), name="reconcile")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
