"""A real node for the delivery benchmarks: migrated, provisioned, serving on
127.0.0.1 with its delivery worker running, in the benchmark's own process."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import select

from node.app import init_app
from node.appkeys import CONFIG, SESSIONS
from node.config import write_config
from node.services.provisioning import Person, provision_node
from storage.models import Community
from tests.benchmarks.results import record_results
from tests.support.inprocess import serving
from tests.support.processes import free_port

PASSWORD = "bench-password"


@dataclass
class BenchNode:
    app: web.Application
    base_url: str
    community: Community
    token: str

    @property
    def concurrency(self) -> int:
        return self.app[CONFIG].delivery_concurrency


@asynccontextmanager
async def bench_node(
    database_url: str | None, http: aiohttp.ClientSession, *, workers: bool = True
) -> AsyncIterator[BenchNode]:
    """SQLite in a temporary folder unless `database_url` names an empty database."""
    root = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    port = free_port()
    config = write_config(
        root,
        base_url=f"http://127.0.0.1:{port}",
        slug="bench",
        name="Bench",
        database_url=database_url,
        allow_private_addresses=True,
    )
    await provision_node(config, people=[Person("bench", PASSWORD, "steward")])
    app = init_app(config, workers=workers)
    async with serving(app, port):
        async with app[SESSIONS]() as session:
            community = (
                await session.scalars(select(Community).where(Community.is_local.is_(True)))
            ).one()
        login = {"username": "bench", "password": PASSWORD}
        async with http.post(f"{config.base_url}/api/v1/auth/token", json=login) as resp:
            token = (await resp.json())["token"]
        yield BenchNode(app, config.base_url, community, token)


def database_label(database_url: str | None) -> str:
    return "postgresql" if database_url and database_url.startswith("postgres") else "sqlite"


BenchRun = Callable[[bool, str | None], Coroutine[None, None, dict[str, float]]]


def run_from_cli(doc: str, run: BenchRun, quick_help: str) -> None:
    """Run a delivery benchmark from its command line (`[--quick] [--database-url URL]`)
    and merge its figures into `bench-results.json`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    args = parser.parse_args()
    record_results(asyncio.run(run(args.quick, args.database_url)))
    print("written to bench-results.json")
