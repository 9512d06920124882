"""Real nodes: `commons-node init` + `serve` processes on 127.0.0.1, each with its own database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import ApiClient
from tests.support.processes import RunningNode, free_port, init_node, serve_node

STEWARD_PASSWORD = "steward-password"


@dataclass
class Cluster:
    root: Path
    nodes: dict[str, RunningNode] = field(default_factory=dict)

    def start(self, slug: str, name: str | None = None) -> RunningNode:
        data = self.root / slug
        if not (data / "config.toml").exists():
            base_url = init_node(
                data,
                slug=slug,
                name=name or f"{slug.title()} Commons",
                port=free_port(),
                password=STEWARD_PASSWORD,
                extra=["--location", "51.50,-0.12"],
            )
        else:
            base_url = self.nodes[slug].base_url
        self.nodes[slug] = serve_node(data, base_url)
        return self.nodes[slug]

    def stop(self, slug: str) -> int:
        return self.nodes[slug].stop()

    def stop_all(self) -> None:
        for node in self.nodes.values():
            node.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # No keep-alive: nodes restart on the same port during a test.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


async def steward(node: RunningNode, http: aiohttp.ClientSession) -> ApiClient:
    return await ApiClient(node.base_url, http).login("steward", STEWARD_PASSWORD)
