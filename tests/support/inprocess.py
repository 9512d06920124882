"""Nodes served from the test process on 127.0.0.1, for tests that step workers directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from node.app import init_app
from node.config import write_config
from node.services.provisioning import Person, provision_node
from tests.support.processes import free_port

PASSWORD = "in-process-password"


@asynccontextmanager
async def running_node(root: Path, slug: str) -> AsyncIterator[web.Application]:
    """A migrated node with a steward `steward`, serving on a free loopback port."""
    port = free_port()
    data = root / slug
    data.mkdir(parents=True)
    config = write_config(
        data,
        base_url=f"http://127.0.0.1:{port}",
        slug=slug,
        name=f"{slug.title()} Commons",
        database_url=None,
        allow_private_addresses=True,
    )
    await provision_node(config, people=[Person("steward", PASSWORD, "steward", operator=True)])
    app = init_app(config)
    async with serving(app, port):
        yield app


@asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[None]:
    """Serve `app` on 127.0.0.1:`port` for the duration of the block."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()
