"""`commons-node demo`: several nodes on loopback, with sample data, already federated.

Every node is a full node with its own data folder and SQLite database; they
run in one process and talk to each other over real HTTP. The first two
communities are partners; every community follows every other's public
listings. Re-running with the same `--data` reuses the nodes and logins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.app import init_app
from node.appkeys import CONFIG, SESSIONS
from node.config import NodeConfig, load_config, write_config
from node.domain.listings import ListingDraft
from node.domain.states import Kind, Visibility
from node.protocol.context import FederationContext
from node.protocol.peers import learn_peer
from node.services import partnerships
from node.services.listings import create_listing
from node.services.provisioning import Person, provision_node
from storage.models import Community, Member
from storage.repositories import CommunityRepository, MemberRepository
from storage.repositories.partnerships import PartnershipRepository

log = logging.getLogger(__name__)

COMMUNITIES = [
    ("riverside", "Riverside Tool Library", (51.507, -0.128), "Drills, ladders, sewing machines."),
    ("hillside", "Hillside Mutual Aid", (51.556, -0.178), "Neighbours helping neighbours."),
    ("lakeside", "Lakeside Time Bank", (51.470, -0.070), "An hour of help for an hour of help."),
    ("meadow", "Meadow Seed Swap", (51.440, -0.210), "Seeds, seedlings and garden tools."),
    ("harbour", "Harbour Repair Cafe", (51.500, 0.010), "Bring it broken, take it home fixed."),
]
SAMPLE_LISTINGS = [
    ("offer", "Cordless drill with two batteries", "tools", "public"),
    ("need", "Help moving a sofa on Saturday", "labour", "public"),
    ("offer", "Sewing machine lessons", "skills", "partners"),
    ("offer", "Spare key to the shed", "tools", "community"),
]


@dataclass
class DemoNode:
    config: NodeConfig
    logins: dict[str, dict[str, str]]
    fresh: bool = False
    runner: web.AppRunner | None = None

    def entry(self) -> dict[str, Any]:
        return {
            "base_url": self.config.base_url,
            "handle": f"{self.config.slug}@{self.config.host}",
            "steward": self.logins["steward"],
            "member": self.logins["member"],
        }


def _logins(slug: str) -> dict[str, dict[str, str]]:
    return {
        role: {"username": f"{role}_{slug}", "password": secrets.token_urlsafe(9)}
        for role in ("steward", "member")
    }


async def _init_node(folder: Path, index: int, port: int) -> DemoNode:
    slug, name, location, description = COMMUNITIES[index]
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(
        folder,
        base_url=f"http://127.0.0.1:{port}",
        slug=slug,
        name=name,
        database_url=None,
        allow_private_addresses=True,
    )
    logins = _logins(slug)
    people = [
        # One community per demo node, so its steward is also the node's operator.
        Person(x["username"], x["password"], role, operator=role == "steward")
        for role, x in logins.items()
    ]
    await provision_node(config, description=description, location=location, people=people)
    return DemoNode(config, logins, fresh=True)


async def prepare(data: Path, count: int, base_port: int) -> list[DemoNode]:
    """Nodes from an earlier run are reused as they are, with their logins."""
    saved = _saved_logins(data)
    nodes = []
    for index in range(count):
        folder = data / COMMUNITIES[index][0]
        if (folder / "config.toml").exists() and folder.name in saved:
            nodes.append(DemoNode(load_config(folder), saved[folder.name]))
        else:
            nodes.append(await _init_node(folder, index, base_port + index))
    return nodes


def _saved_logins(data: Path) -> dict[str, dict[str, dict[str, str]]]:
    path = data / "demo.json"
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {
        entry["handle"].split("@")[0]: {"steward": entry["steward"], "member": entry["member"]}
        for entry in saved.get("nodes", [])
    }


async def _local(app: web.Application, session: AsyncSession) -> Community:
    community = await CommunityRepository(session).get_local_by_slug(app[CONFIG].slug)
    assert community is not None
    return community


async def _member(app: web.Application, session: AsyncSession, username: str) -> Member:
    community = await _local(app, session)
    member = await MemberRepository(session).get_by_username(community.id, username)
    assert member is not None
    return member


async def seed_listings(node: DemoNode, app: web.Application) -> None:
    async with app[SESSIONS]() as session:
        member = await _member(app, session, node.logins["member"]["username"])
        for kind, title, category, visibility in SAMPLE_LISTINGS:
            data = ListingDraft(
                kind=Kind(kind),
                title=f"{title} ({node.config.name.split()[0]})",
                description=f"Ask {member.username} on {node.config.name}.",
                category=category,
                visibility=Visibility(visibility),
            )
            await create_listing(session, member, data)
        await session.commit()


async def federate(nodes: list[DemoNode], apps: list[web.Application]) -> None:
    """Every community follows every other; the first two become partners."""
    for app in apps:
        ctx = FederationContext.from_app(app)
        async with app[SESSIONS]() as session:
            local = await _local(app, session)
        for other in nodes:
            if other.config.base_url != ctx.config.base_url:
                await learn_peer(ctx, other.config.base_url, local)
    if len(apps) >= 2:
        await _partner(nodes[0], apps[0], nodes[1], apps[1])


async def _partner(
    a: DemoNode, app_a: web.Application, b: DemoNode, app_b: web.Application
) -> None:
    async with app_a[SESSIONS]() as session:
        steward = await _member(app_a, session, a.logins["steward"]["username"])
        handle = f"{b.config.slug}@{b.config.host}"
        ctx = FederationContext.from_app(app_a)
        await partnerships.propose(ctx, session, steward, handle, "Shall we share tools?")
        await session.commit()
    for _ in range(200):
        async with app_b[SESSIONS]() as session:
            local = await _local(app_b, session)
            pending = [
                p
                for p in await PartnershipRepository(session).list_for_community(local.id)
                if p.state == "pending"
            ]
            if pending:
                steward = await _member(app_b, session, b.logins["steward"]["username"])
                await partnerships.approve(session, steward, pending[0].id)
                await session.commit()
                return
        await asyncio.sleep(0.1)
    log.warning("the partnership proposal did not arrive; the demo runs without it")


async def start(node: DemoNode) -> web.Application:
    app = init_app(node.config)
    node.runner = web.AppRunner(app, access_log=None)
    await node.runner.setup()
    site = web.TCPSite(node.runner, node.config.listen_host, node.config.listen_port)
    await site.start()
    return app


def _announce(data: Path, nodes: list[DemoNode]) -> None:
    document = {"nodes": [node.entry() for node in nodes]}
    (data / "demo.json").write_text(json.dumps(document, indent=2))
    print(f"Commons Node demo: {len(nodes)} nodes (logins also in {data / 'demo.json'})")
    for node in nodes:
        entry = node.entry()
        print(f"  {node.config.name}: {entry['base_url']}/  ({entry['handle']})")
        for role in ("steward", "member"):
            print(f"    {role}: {entry[role]['username']} / {entry[role]['password']}")
    print("Press Ctrl+C to stop.", flush=True)


async def run_demo(count: int, base_port: int, data: Path) -> None:
    if not 1 <= count <= len(COMMUNITIES):
        raise ValueError(f"--nodes must be between 1 and {len(COMMUNITIES)}")
    data.mkdir(parents=True, exist_ok=True)
    nodes = await prepare(data, count, base_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        apps = [await start(node) for node in nodes]
        if any(node.fresh for node in nodes):
            for node, app in zip(nodes, apps, strict=True):
                if node.fresh:
                    await seed_listings(node, app)
            await federate(nodes, apps)
        _announce(data, nodes)
        await stop.wait()
    finally:
        for node in nodes:
            if node.runner is not None:
                await node.runner.cleanup()
