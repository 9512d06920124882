"""Wiring the protocol into the app: routes, the inbox handler table, workers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.orm import Session

from federation.jsonld import install_document_loader
from node.appkeys import CONFIG
from node.media.store import remove_orphans_after_commit
from node.protocol.documents import setup_document_routes
from node.protocol.handlers import inbox_handlers
from node.protocol.handoff import hand_over_after_commit
from node.protocol.inbox import INBOX_BATCH, inbox_processor_ctx, setup_inbox_routes
from node.protocol.jobs import WAKE_JOBS
from node.protocol.listing_batches import ListingBatch
from node.protocol.publishing import WAKE_DELIVERY
from node.protocol.workers import delivery_worker_ctx, job_worker_ctx, wake_delivery, wake_jobs


async def _document_loader_ctx(_app: web.Application) -> AsyncIterator[None]:
    """pyld's loader is process-wide; installing our offline one is idempotent."""
    install_document_loader()
    yield


def wake_after_commit(app: web.Application, session: Session) -> None:
    """Session hook: a commit that queued deliveries or jobs wakes their worker at once
    (and hands it the deliveries leased to it)."""
    hand_over_after_commit(app, session)
    if session.info.pop(WAKE_DELIVERY, False):
        wake_delivery(app)
    if session.info.pop(WAKE_JOBS, False):
        wake_jobs(app)
    remove_orphans_after_commit(app[CONFIG], session)


def setup_federation(app: web.Application, *, workers: bool = True) -> None:
    """Call after the database and HTTP client contexts are registered.

    With `workers=False` the app only answers requests: what it queues
    (deliveries, jobs, received activities) waits for a `commons-node worker`
    sharing its database.
    """
    setup_document_routes(app)
    setup_inbox_routes(app, inbox_handlers(app))
    app[INBOX_BATCH] = ListingBatch(app)
    app.cleanup_ctx.append(_document_loader_ctx)
    if workers:
        app.cleanup_ctx.append(delivery_worker_ctx)
        app.cleanup_ctx.append(inbox_processor_ctx)
        app.cleanup_ctx.append(job_worker_ctx)
