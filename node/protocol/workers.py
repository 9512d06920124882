"""Background workers, started and stopped with the application (`cleanup_ctx`).

The delivery worker runs for the app's lifetime. Request handlers that
enqueue deliveries call `wake_delivery(app)` after committing, so a partner
hears of a change within moments rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from federation.delivery import DeliveryWorker
from federation.http_client import HttpLimits
from node.appkeys import CONFIG, HTTP, SESSIONS
from node.protocol.delivery_queue import SqlDeliveryQueue

logger = logging.getLogger(__name__)

DELIVERY_WAKE = web.AppKey("delivery_wake", asyncio.Event)
DELIVERY_POLL_SECONDS = 1.0


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
    worker = DeliveryWorker(
        SqlDeliveryQueue(app[SESSIONS]),
        app[HTTP],
        allow_private=app[CONFIG].allow_private_addresses,
        limits=HttpLimits(),
    )
    task = asyncio.create_task(
        worker.run_forever(DELIVERY_POLL_SECONDS, wake), name="delivery-worker"
    )
    yield
    await _stop(task)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait for it, without hiding a cancellation of our own."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
