"""Discovery at network scale: many real nodes in one process, learning the network by crawling.

Run on demand: `./dev bench` or `.venv/bin/python -m tests.benchmarks.bench_discovery
[--nodes 100] [--stages 25,50,100] [--seed 7] [--out bench-discovery.json]`.

Every node is the real application (`init_app`) with its own SQLite database
in a temporary folder, served on its own 127.0.0.1 port, so every crawl is a
signed HTTP request through the address guard like any other. Only what the
simulation does not exercise is left out: no people (no password hashing), and
the background workers and their timers are not started, because the
simulation steps each node's job worker itself, one refresh round at a time.

The network grows in stages (25, 50, 100 nodes by default). A node joins told
about one to three nodes already there (a steward adding a peer: depth 0), and
the steward of the first of those adds it back, as two stewards who agree to
connect do; some communities have opted out of directories, and some nodes
host a second community. At each stage the network refreshes until no node
learns anything more, then one more round is measured: the requests each node
serves in it. Then a NEW node joins, told about a single peer, and rounds run
until its directory holds 95 % of the discoverable communities elsewhere:
the rounds and requests that took. Throughout, no directory may ever list a
community that opted out, and at the end one community opts out and the
rounds until every directory has dropped it are counted.

It prints a table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation import signatures
from node.app import init_app
from node.appkeys import SESSIONS
from node.config import NodeConfig, write_config
from node.protocol import crawl
from node.protocol.crawl import enqueue_crawl, enqueue_directory_refresh
from node.protocol.inbox import inbox_processor_ctx
from node.protocol.job_handlers import job_handlers
from node.protocol.jobs import JobWorker
from node.protocol.workers import delivery_worker_ctx, job_worker_ctx
from node.services.communities import create_local_community, set_discoverable
from node.services.provisioning import provision_node
from storage.migrate import upgrade_to_head_async
from storage.models import Community, KnownPeer
from storage.repositories import CommunityRepository
from storage.repositories.discovery import DirectoryFilters, DirectoryRepository
from storage.repositories.peers import KnownPeerRepository
from tests.support.processes import free_port

TARGET = 0.95
MAX_ROUNDS = 12
NOT_DISCOVERABLE = 0.15  # share of communities that opted out of directories
SECOND_COMMUNITY = 0.2  # share of nodes hosting a second community
SETTINGS: dict[str, Any] = {
    # Logical rounds: crawls run back to back, and any node read in an earlier
    # round is due again (a round stands for `discovery_refresh_interval_seconds`).
    "discovery_crawl_spacing_seconds": 0,
    "discovery_refresh_interval_seconds": 1,
}
ROUND_GAP_SECONDS = 1.05


@dataclass
class SimNode:
    index: int
    config: NodeConfig
    app: web.Application
    runner: web.AppRunner
    worker: JobWorker
    communities: list[str] = field(default_factory=list)  # ap_ids hosted here
    served: int = 0  # requests answered this round
    made: int = 0  # requests sent this round (counted where they were served)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.app[SESSIONS]


class Network:
    """The nodes, the truth about their communities, and the round driver."""

    def __init__(self, root: Path, rng: random.Random, settings: dict[str, Any]) -> None:
        self.root = root
        self.rng = rng
        self.settings = settings
        self.nodes: list[SimNode] = []
        self.by_url: dict[str, SimNode] = {}
        self.discoverable: set[str] = set()
        self.hidden: set[str] = set()
        self.template = root / "template.db"
        self.hidden_leaks = 0

    async def prepare(self) -> None:
        await upgrade_to_head_async(f"sqlite+aiosqlite:///{self.template}")

    def _counter(self, node_ref: list[SimNode]) -> Any:
        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            node_ref[0].served += 1
            agent = request.headers.get("User-Agent", "")
            caller = self.by_url.get(agent.rpartition("(+")[2].rstrip(")"))
            if caller is not None:
                caller.made += 1
            return await handler(request)

        return count

    async def add_node(self) -> SimNode:
        index = len(self.nodes)
        port = free_port()
        data = self.root / f"n{index}"
        data.mkdir()
        db = data / "commons.db"
        shutil.copyfile(self.template, db)
        slug = f"c{index}"
        config = write_config(
            data,
            base_url=f"http://127.0.0.1:{port}",
            slug=slug,
            name=f"Commons {index}",
            database_url=f"sqlite+aiosqlite:///{db}",
            allow_private_addresses=True,
        ).model_copy(update=self.settings)
        place = (self.rng.uniform(50.0, 58.0), self.rng.uniform(-5.0, 1.5))
        first = await provision_node(config, location=place, migrate=False)
        app = init_app(config)
        for ctx in (job_worker_ctx, delivery_worker_ctx, inbox_processor_ctx):
            app.cleanup_ctx.remove(ctx)  # stepped by hand, or not needed here
        ref: list[SimNode] = []
        app.middlewares.insert(0, self._counter(ref))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        worker = JobWorker(app[SESSIONS], job_handlers(app), concurrency=2)
        node = SimNode(index, config, app, runner, worker)
        ref.append(node)
        self.nodes.append(node)
        self.by_url[node.base_url] = node
        node.communities.append(first.ap_id)
        if self.rng.random() < SECOND_COMMUNITY:
            async with node.sessions() as session:
                second = await create_local_community(
                    session, config, slug=f"{slug}b", name=f"Commons {index} B", location=place
                )
                await session.commit()
            node.communities.append(second.ap_id)
        for ap_id in node.communities:
            hide = self.rng.random() < NOT_DISCOVERABLE
            if hide:
                await self._set_discoverable(node, ap_id, False)
            (self.hidden if hide else self.discoverable).add(ap_id)
        return node

    async def _set_discoverable(self, node: SimNode, ap_id: str, value: bool) -> None:
        async with node.sessions() as session:
            community = await CommunityRepository(session).get_by_ap_id(ap_id)
            assert community is not None
            await set_discoverable(session, community, value)
            await session.commit()

    async def opt_out(self, node: SimNode, ap_id: str) -> None:
        await self._set_discoverable(node, ap_id, False)
        self.discoverable.discard(ap_id)
        self.hidden.add(ap_id)

    async def tell(self, node: SimNode, peer: SimNode) -> None:
        """A steward of `node` adds `peer` (POST /discovery/peers, without following)."""
        async with node.sessions() as session:
            communities = await CommunityRepository(session).list_local()
            known = await KnownPeerRepository(session).upsert(peer.base_url, communities[0].id)
            known.depth, known.learned_from = 0, None
            await enqueue_crawl(session, peer.base_url, 0)
            await session.commit()

    async def join(self, *, told: int) -> SimNode:
        """A node joins, told about `told` random nodes; the first one is told about it."""
        others = list(self.nodes)
        node = await self.add_node()
        peers = self.rng.sample(others, min(told, len(others)))
        for peer in peers:
            await self.tell(node, peer)
        return node

    async def settle(self) -> int:
        """Run every node's due jobs until none is due anywhere; returns jobs run.

        Only a node's own jobs queue more of its jobs here (nothing is delivered),
        so a node with nothing due stays idle until the next round.
        """
        total = 0
        busy = list(self.nodes)
        while busy:
            ran = await asyncio.gather(*(n.worker.run_once() for n in busy))
            total += sum(ran)
            busy = [node for node, count in zip(busy, ran, strict=True) if count]
        return total

    def reset_counts(self) -> None:
        for node in self.nodes:
            node.served = node.made = 0

    async def refresh_round(self) -> dict[str, Any]:
        """One refresh round on every node: queue `refresh_directory`, run to quiet."""
        await asyncio.sleep(ROUND_GAP_SECONDS)  # every node read before is due again
        self.reset_counts()
        started = time.perf_counter()
        for node in self.nodes:
            async with node.sessions() as session:
                await enqueue_directory_refresh(session)
                await session.commit()
        jobs = await self.settle()
        return {"seconds": time.perf_counter() - started, "jobs": jobs}

    async def directory(self, node: SimNode) -> set[str]:
        """What a member of `node`'s first community sees in its directory."""
        async with node.sessions() as session:
            viewer = await CommunityRepository(session).get_by_ap_id(node.communities[0])
            assert viewer is not None
            entries = await DirectoryRepository(session).page(
                viewer.id, DirectoryFilters(), None, 100_000
            )
        return {entry.community.ap_id for entry in entries}

    async def coverage(self, node: SimNode) -> float:
        elsewhere = self.discoverable - set(node.communities)
        return len(await self.directory(node) & elsewhere) / max(1, len(elsewhere))

    async def check_hidden(self) -> int:
        """Directories listing a community of another node that opted out (must stay 0)."""
        leaks = 0
        for node in self.nodes:
            leaks += len((await self.directory(node) & self.hidden) - set(node.communities))
        self.hidden_leaks += leaks
        return leaks

    async def known_counts(self) -> tuple[int, int]:
        """(known peers, remote communities cached) summed over all nodes."""
        peers = communities = 0
        for node in self.nodes:
            async with node.sessions() as session:
                peers += (
                    await session.execute(select(func.count()).select_from(KnownPeer))
                ).scalar_one()
                communities += (
                    await session.execute(
                        select(func.count())
                        .select_from(Community)
                        .where(Community.is_local.is_(False))
                    )
                ).scalar_one()
        return peers, communities

    def load(self) -> dict[str, float]:
        served = [n.served for n in self.nodes]
        made = [n.made for n in self.nodes]
        return {
            "served_mean": statistics.fmean(served),
            "served_max": max(served),
            "made_mean": statistics.fmean(made),
            "made_max": max(made),
            "total": sum(served),
        }

    async def close(self) -> None:
        for node in self.nodes:
            await node.runner.cleanup()


async def grow_to(net: Network, size: int, log: Callable[[str], None]) -> None:
    while len(net.nodes) < size:
        node = await net.join(told=net.rng.randint(1, 3))
        if len(net.nodes) > 1:
            async with node.sessions() as session:
                first = (await KnownPeerRepository(session).list())[0].base_url
            await net.tell(net.by_url[first], node)  # its steward adds the newcomer back
    log(f"{size} nodes up")
    await net.settle()


async def converge(net: Network, log: Callable[[str], None]) -> tuple[int, dict[str, float]]:
    """Refresh until a round teaches no node anything new: that round is the steady
    one measured. Returns the rounds run and the load of the last."""
    before = await net.known_counts()
    for rounds in range(1, MAX_ROUNDS + 1):
        info = await net.refresh_round()
        after = await net.known_counts()
        log(f"  round {rounds}: {info['jobs']} jobs, {info['seconds']:.1f}s, known {after}")
        if after == before:
            break
        before = after
    return rounds, net.load()


async def newcomer(net: Network, log: Callable[[str], None]) -> dict[str, Any]:
    """A new node told about one peer: rounds and requests until it sees 95 %."""
    peer = net.rng.choice(net.nodes)
    net.reset_counts()
    node = await net.join(told=0)
    await net.tell(node, peer)
    await net.settle()  # the crawl a steward's "add peer" starts, and those it queues
    made, total = node.made, sum(n.served for n in net.nodes)
    history = [await net.coverage(node)]
    log(f"  newcomer: first crawl -> {history[-1]:.0%}")
    rounds = 0
    while history[-1] < TARGET and rounds < MAX_ROUNDS:
        await net.refresh_round()
        rounds += 1
        made += node.made
        total += sum(n.served for n in net.nodes)
        history.append(await net.coverage(node))
        log(f"  newcomer: refresh round {rounds} -> {history[-1]:.0%}")
    await net.tell(peer, node)  # and its peer's steward adds it back, for later stages
    await net.settle()
    return {
        "refresh_rounds": rounds,
        "reached": history[-1] >= TARGET,
        "coverage_by_round": [round(c, 3) for c in history],
        "requests_by_newcomer": made,
        "requests_in_network": total,
    }


async def opt_out_rounds(net: Network, log: Callable[[str], None]) -> int | None:
    """One community opts out: refresh rounds until no other directory lists it."""
    listed = [c for n in net.nodes for c in n.communities if c in net.discoverable]
    ap_id = net.rng.choice(listed)
    owner = next(n for n in net.nodes if ap_id in n.communities)
    await net.opt_out(owner, ap_id)
    for rounds in range(1, MAX_ROUNDS + 1):
        await net.refresh_round()
        holders = [n for n in net.nodes if n is not owner and ap_id in await net.directory(n)]
        log(f"  opt-out round {rounds}: still listed by {len(holders)}")
        if not holders:
            return rounds
    return None


def _one_signer_cache_per_server() -> None:
    """A real server signs with its own few keys, which the signer cache keeps parsed;
    here one process signs for every server, so give it room for all of their keys."""
    signatures.load_private_key = lru_cache(maxsize=4096)(  # type: ignore[assignment]
        signatures.load_private_key.__wrapped__
    )


async def simulate(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    _one_signer_cache_per_server()
    crawl._shuffle.seed(args.seed)
    stages = sorted({int(s) for s in args.stages.split(",") if int(s) <= args.nodes} | {args.nodes})
    settings = {**SETTINGS, **dict(args.setting)}
    rng = random.Random(args.seed)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    net = Network(root, rng, settings)
    results: dict[str, Any] = {"settings": settings, "seed": args.seed, "stages": []}
    try:
        await net.prepare()
        for stage, size in enumerate(stages):
            await grow_to(net, size - 1, log)
            warmup, steady = await converge(net, log)
            log(f"  steady round at {size - 1} nodes: {steady}")
            joined = await newcomer(net, log)
            leaks = await net.check_hidden()
            results["stages"].append(
                {
                    "nodes": len(net.nodes),
                    "communities": len(net.discoverable) + len(net.hidden),
                    "discoverable": len(net.discoverable),
                    "warmup_rounds": warmup,
                    "steady_round": steady,
                    "newcomer": joined,
                    "hidden_listed": leaks,
                }
            )
            if stage == 0:
                results["opt_out_rounds"] = await opt_out_rounds(net, log)
        results["hidden_listed_total"] = net.hidden_leaks + await net.check_hidden()
    finally:
        await net.close()
        shutil.rmtree(root, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def table(results: dict[str, Any]) -> str:
    head = (
        f"{'nodes':>5} {'discoverable':>12} {'rounds to 95%':>13} {'newcomer reqs':>13} "
        f"{'network reqs':>12} {'served/node/round mean':>22} {'max':>6} {'hidden listed':>13}"
    )
    lines = [head, "-" * len(head)]
    for stage in results["stages"]:
        joined, steady = stage["newcomer"], stage["steady_round"]
        rounds = joined["refresh_rounds"] if joined["reached"] else f">{joined['refresh_rounds']}"
        lines.append(
            f"{stage['nodes']:>5} {stage['discoverable']:>12} {rounds!s:>13} "
            f"{joined['requests_by_newcomer']:>13} {joined['requests_in_network']:>12} "
            f"{steady['served_mean']:>22.1f} {steady['served_max']:>6} {stage['hidden_listed']:>13}"
        )
    lines.append(
        f"opt-out gone from every directory after {results['opt_out_rounds']} round(s); "
        f"opted-out communities ever listed elsewhere: {results['hidden_listed_total']}; "
        f"{results['seconds']}s"
    )
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    return name.strip(), int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--stages", default="25,50,100", help="sizes to measure at")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-discovery.json"))
    parser.add_argument(
        "--setting",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a discovery setting, e.g. discovery_crawls_per_round=25",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    shm = Path("/dev/shm")  # durability is not what is measured here
    root = Path(
        tempfile.mkdtemp(prefix="commons-discovery-sim-", dir=shm if shm.is_dir() else None)
    )
    results = asyncio.run(simulate(args, root))
    print(table(results))
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if results["hidden_listed_total"]:
        raise SystemExit("an opted-out community was listed in another node's directory")


if __name__ == "__main__":
    main()
