"""`commons-node worker`: a node's background work in a process of its own.

A node that outgrows one process runs several `serve --no-workers` behind
the reverse proxy and one or more `worker` processes, all on one PostgreSQL
database. The worker runs what `serve` runs in the background (the delivery
worker, the inbox processor, the job worker and its timers) and serves no
pages. Optionally it answers `/healthz`, `/readyz` and `/metrics` on a port
of its own, since its delivery counters live in its own process.

Delivery is at least once. A worker killed between a peer's 2xx and our
commit of that outcome leaves a lease that lapses, and the delivery is sent
again; receivers deduplicate by activity id (ours stores each id once). In
every other case a delivery is sent once: a lease is held by one worker at a
time, and an answered delivery's outcome is recorded before its worker stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from node.app import init_worker_app
from node.appkeys import CONFIG, ENGINE, SESSIONS
from node.config import NodeConfig
from node.ops.endpoints import HEAD_REVISION, healthz, metrics_endpoint, readyz
from node.ops.metrics import METRICS

log = logging.getLogger(__name__)


def operations_app(node_app: web.Application) -> web.Application:
    """A tiny app answering only the operations routes, over the worker's own state."""
    app = web.Application()
    app[CONFIG] = node_app[CONFIG]
    app[ENGINE] = node_app[ENGINE]
    app[SESSIONS] = node_app[SESSIONS]
    app[METRICS] = node_app[METRICS]
    app[HEAD_REVISION] = node_app[HEAD_REVISION]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def run_worker(config: NodeConfig, *, host: str | None, port: int | None) -> None:
    """Run until SIGTERM or SIGINT; in-flight deliveries are finished or released."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(init_worker_app(config), handle_signals=False)
    await runner.setup()
    ops_runner: web.AppRunner | None = None
    try:
        if port is not None:
            ops_runner = web.AppRunner(operations_app(runner.app), access_log=None)
            await ops_runner.setup()
            await web.TCPSite(ops_runner, host or "127.0.0.1", port).start()
            log.info("worker answering /healthz, /readyz, /metrics on %s:%s", host, port)
        log.info("worker running for %s", config.base_url)
        await stop.wait()
        log.info("worker stopping")
    finally:
        if ops_runner is not None:
            await ops_runner.cleanup()
        await runner.cleanup()  # each worker has its own grace period for what it holds
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
