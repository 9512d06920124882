"""Background workers, started and stopped with the application (`cleanup_ctx`).

The delivery worker runs for the app's lifetime. Request handlers that
enqueue deliveries call `wake_delivery(app)` after committing, so a partner
hears of a change within moments rather than at the next poll.

The same contexts run inside `commons-node serve` (the default) or in a
separate `commons-node worker` process. Several of either may share one
PostgreSQL database: every queue is claimed with a lease (`locked_until`)
and, on PostgreSQL, `FOR UPDATE SKIP LOCKED`, so two workers never hold the
same row, and a worker that dies lets its leases lapse for another to take.
A dedicated worker polls every `worker_poll_seconds` (`WORKER_POLL_SECONDS`),
since the wake-ups of a `serve` process cannot reach it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from federation.delivery import DeliveryWorker
from federation.http_client import HttpLimits
from node.appkeys import CONFIG, HTTP, SESSIONS, WORKER_POLL_SECONDS
from node.ops.metrics import METRICS
from node.protocol.crawl import enqueue_directory_refresh
from node.protocol.delivery_queue import SqlDeliveryQueue
from node.protocol.handoff import DELIVERY_HANDOFF
from node.protocol.job_handlers import (
    directory_refresh_interval,
    enqueue_reconcile,
    job_handlers,
    reconcile_interval,
)
from node.protocol.jobs import JobWorker

logger = logging.getLogger(__name__)

DELIVERY_WAKE = web.AppKey("delivery_wake", asyncio.Event)
DELIVERY_POLL_SECONDS = 1.0
JOB_WAKE = web.AppKey("job_wake", asyncio.Event)
JOB_POLL_SECONDS = 5.0
JOB_STOP_GRACE_SECONDS = 5.0


def wake_jobs(app: web.Application) -> None:
    """Tell the job worker that a job was committed; harmless if none runs."""
    wake = app.get(JOB_WAKE)
    if wake is not None:
        wake.set()


def wake_delivery(app: web.Application) -> None:
    """Tell the delivery worker that work was committed; harmless if none runs."""
    wake = app.get(DELIVERY_WAKE)
    if wake is not None:
        wake.set()


async def delivery_worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the delivery worker from start-up to clean-up.

    Needs the database and HTTP client contexts before it, so that on the way
    down the worker stops (releasing in-flight leases) before the HTTP session
    closes and the engine is disposed.
    """
    wake = asyncio.Event()
    app[DELIVERY_WAKE] = wake
    metrics = app.get(METRICS)
    queue = SqlDeliveryQueue(
        app[SESSIONS], observe=metrics.delivery_outcome if metrics is not None else None
    )
    signers = ThreadPoolExecutor(_cores(), thread_name_prefix="sign")
    worker = DeliveryWorker(
        queue,
        app[HTTP],
        allow_private=app[CONFIG].allow_private_addresses,
        limits=HttpLimits(),
        lease=timedelta(seconds=app[CONFIG].delivery_lease_seconds),
        concurrency=app[CONFIG].delivery_concurrency,
        per_host=app[CONFIG].delivery_per_host,
        sign_on=signers,
    )
    task = asyncio.create_task(
        worker.run_forever(app.get(WORKER_POLL_SECONDS, DELIVERY_POLL_SECONDS), wake),
        name="delivery-worker",
    )
    handoff = app.get(DELIVERY_HANDOFF)
    if handoff is not None:
        handoff.attach(worker)
    yield
    if handoff is not None:
        handoff.attach(None)
    await _stop(task)
    signers.shutdown(wait=False, cancel_futures=True)


def _cores() -> int:
    """The cores this process may run on (all of them where that is not known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


async def job_worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the job worker, and queue a reconciliation and a directory round every interval.

    A timer only queues a `reconcile` or `refresh_directory` job (once: it is deduplicated); the
    work itself is durable, so a restart between rounds loses nothing.
    """
    wake = asyncio.Event()
    app[JOB_WAKE] = wake
    worker = JobWorker(app[SESSIONS], job_handlers(app))
    poll = app.get(WORKER_POLL_SECONDS, JOB_POLL_SECONDS)
    task = asyncio.create_task(worker.run_forever(poll, wake), name="job-worker")
    timers = [
        asyncio.create_task(
            _timer(app, reconcile_interval(app), enqueue_reconcile), name="reconcile-timer"
        ),
        asyncio.create_task(
            _timer(app, directory_refresh_interval(app), enqueue_directory_refresh),
            name="directory-timer",
        ),
    ]
    yield
    worker.stop()
    wake.set()
    for timer in timers:
        timer.cancel()
    _, pending = await asyncio.wait([task], timeout=JOB_STOP_GRACE_SECONDS)
    for unfinished in pending:
        unfinished.cancel()  # its job's lease is released, so it runs again after a restart
    await asyncio.gather(*timers, task, return_exceptions=True)


async def _timer(
    app: web.Application,
    interval: float,
    enqueue: Callable[[AsyncSession], Awaitable[bool]],
) -> None:
    """Queue one (deduplicated) job every `interval`: a reconciliation or directory round."""
    while True:
        await asyncio.sleep(interval)
        try:
            async with app[SESSIONS]() as session:
                await enqueue(session)
                await session.commit()
        except Exception:  # the database may be briefly away; the next round tries again
            logger.exception("could not queue a periodic job")
        wake_jobs(app)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it, without hiding a cancellation of our own."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
