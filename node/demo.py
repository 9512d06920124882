"""`commons-node demo`: several nodes on loopback, with a living network's worth of data.

Every node is a full node with its own data folder and SQLite database; they
run in one process and talk to each other over real HTTP. Three neighbouring
communities (a tool library, a mutual-aid group, a time bank) and one far
away (a repair cafe in Glasgow) have members, a few hundred offers and
needs, and months of exchanges; everyone follows everyone's public listings,
the first two are partners and the third has a proposal waiting. The data
comes from `node.demo_data`, seeded, so every fresh demo looks the same.

Re-running with the same `--data` reuses the nodes and their logins;
`--fresh` starts over. The access log and errors go to `DATA/demo.log`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import signal
import socket
import time
import zlib
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.app import init_app
from node.appkeys import SESSIONS
from node.config import NodeConfig, default_database_url, load_config, write_config
from node.demo_data import network
from node.demo_data.local import seed_history, seed_listings, seed_members
from node.demo_data.photos import draw_photo
from node.demo_data.plan import COMMUNITIES, CommunitySpec, Plan, build_plan
from node.domain.states import Kind
from node.media.store import MediaStore
from node.ops.logs import AccessLogger, RequestIdFilter, TextFormatter
from node.services.images import attach, prepare_photo
from node.services.provisioning import Person, provision_node
from storage.migrate import upgrade_to_head_async
from storage.models import Listing, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

REGIONAL = [spec for spec in COMMUNITIES if not spec.far]
FAR = next(spec for spec in COMMUNITIES if spec.far)
SEEDED_MARK = ".seeded"
LOG_FILE = "demo.log"
SCHEMA_FILE = ".schema.db"
PARTNERS = (("riverside", "hillside", "Shall we share tools and helping hands?"),)
PROPOSALS = (("riverside", "lakeside", "Our members would love your lessons and repairs."),)


@dataclass
class DemoNode:
    spec: CommunitySpec
    config: NodeConfig
    logins: dict[str, dict[str, str]]
    runner: web.AppRunner | None = None
    app: web.Application | None = None

    def entry(self) -> dict[str, Any]:
        return {
            "base_url": self.config.base_url,
            "handle": f"{self.config.slug}@{self.config.host}",
            "name": self.config.name,
            "steward": self.logins["steward"],
            "member": self.logins["member"],
        }

    def live(self) -> network.LiveNode:
        assert self.app is not None
        return network.LiveNode(
            self.spec.slug,
            self.app,
            self.logins["steward"]["username"],
            self.logins["member"]["username"],
        )


def communities_for(count: int) -> list[CommunitySpec]:
    """`count` neighbouring communities, and the far one after them."""
    if not 1 <= count <= len(REGIONAL):
        raise ValueError(f"--nodes must be between 1 and {len(REGIONAL)}")
    return [*REGIONAL[:count], FAR]


def _logins(slug: str) -> dict[str, dict[str, str]]:
    return {
        role: {"username": f"{role}_{slug}", "password": secrets.token_urlsafe(9)}
        for role in ("steward", "member")
    }


async def _init_node(folder: Path, spec: CommunitySpec, port: int, schema: Path) -> DemoNode:
    """A node like `commons-node init` makes, its database a copy of `schema` (at head)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema, folder / "commons.db")
    config = write_config(
        folder,
        base_url=f"http://127.0.0.1:{port}",
        slug=spec.slug,
        name=spec.name,
        database_url=None,
        allow_private_addresses=True,
    )
    logins = _logins(spec.slug)
    people = [
        # One community per demo node, so its steward is also the node's operator.
        Person(x["username"], x["password"], role, operator=role == "steward")
        for role, x in logins.items()
    ]
    await provision_node(
        config, description=spec.description, location=spec.center, people=people, migrate=False
    )
    return DemoNode(spec, config, logins)


def _saved_logins(data: Path) -> dict[str, dict[str, dict[str, str]]]:
    path = data / "demo.json"
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {
        entry["handle"].split("@")[0]: {"steward": entry["steward"], "member": entry["member"]}
        for entry in saved.get("nodes", [])
    }


def reusable(data: Path, specs: Sequence[CommunitySpec]) -> list[DemoNode] | None:
    """The nodes of an earlier, completed run with the same communities, else None."""
    saved = _saved_logins(data)
    if not (data / SEEDED_MARK).exists() or set(saved) != {spec.slug for spec in specs}:
        return None
    if not all((data / spec.slug / "config.toml").exists() for spec in specs):
        return None
    return [DemoNode(spec, load_config(data / spec.slug), saved[spec.slug]) for spec in specs]


def wipe(data: Path) -> None:
    """Remove what a demo wrote in `data` (its node folders and files), nothing else."""
    for spec in COMMUNITIES:
        shutil.rmtree(data / spec.slug, ignore_errors=True)
    for name in ("demo.json", SEEDED_MARK):
        (data / name).unlink(missing_ok=True)


@contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Send every log record (access log included) to `path` instead of the terminal."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(TextFormatter())
    handler.addFilter(RequestIdFilter())
    previous, level = list(root.handlers), root.level
    for old in previous:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
        for old in previous:
            root.addHandler(old)


async def start(node: DemoNode) -> web.Application:
    app = init_app(node.config)
    node.runner = web.AppRunner(
        app,
        access_log=logging.getLogger("commons_node.access"),
        access_log_class=AccessLogger,
    )
    await node.runner.setup()
    site = web.TCPSite(node.runner, node.config.listen_host, node.config.listen_port)
    await site.start()
    node.app = app
    return app


PHOTO_EVERY = 3
"""One offer in this many gets a drawn photo; needs stay without."""


async def attach_generated_photos(
    session: AsyncSession, config: NodeConfig, listings: dict[str, Listing]
) -> int:
    """Give some of one node's offers a drawn picture, before anything federates.

    The drawings (`node.demo_data.photos`) go through the same re-encoding as a
    member's upload and are stored in the node's media folder, so the photos
    travel with the listings as `Image` attachments and the other nodes fetch
    their own copies. Which offers get one is decided by their plan key, so a
    fresh demo always looks the same. Returns how many were attached.
    """
    store = MediaStore.of(config)
    attached = 0
    for key, row in sorted(listings.items()):
        if row.kind != Kind.OFFER or zlib.crc32(key.encode()) % PHOTO_EVERY:
            continue
        listing = await session.get(Listing, row.id)
        if listing is None:
            continue
        await session.refresh(listing, ["images"])
        photo = await prepare_photo(draw_photo(listing.category, key), store)
        attach(listing, photo, f"A drawing of {listing.title.lower()}")
        attached += 1
    return attached


def _expected_mirrors(plan: Plan, specs: Sequence[CommunitySpec]) -> dict[str, int]:
    """How many active listings of the others each community may see."""
    slugs = {spec.slug for spec in specs}
    pairs = {frozenset(pair[:2]) for pair in PARTNERS if set(pair[:2]) <= slugs}
    expected = {}
    for spec in specs:
        expected[spec.slug] = sum(
            1
            for x in plan.listings
            if x.community != spec.slug
            and x.community in slugs
            and not x.closed
            and (
                x.visibility == "public"
                or (x.visibility == "partners" and frozenset((spec.slug, x.community)) in pairs)
            )
        )
    return expected


async def seed(nodes: Sequence[DemoNode], scale: float) -> dict[str, float]:
    """Fill fresh, running nodes: local data in bulk, then the federation through the services.

    Returns how long each stage took, in seconds.
    """
    specs = tuple(node.spec for node in nodes)
    slugs = {spec.slug for spec in specs}
    partners = {frozenset(pair[:2]) for pair in PARTNERS if set(pair[:2]) <= slugs}
    logins = {
        node.spec.slug: (node.logins["steward"]["username"], node.logins["member"]["username"])
        for node in nodes
    }
    plan = build_plan(specs, partners, logins, scale)
    now = utcnow()
    timings: dict[str, float] = {}
    began = time.monotonic()
    listings: dict[str, Listing] = {}
    live_local = {}
    for node in nodes:
        live = node.live()
        async with live.app[SESSIONS]() as session:
            community = await network.community(session, live)
            members = await seed_members(session, community, plan, now)
            rows = await seed_listings(session, community, plan, members, now)
            live_local[node.spec.slug] = await seed_history(
                session, community, plan, rows, members, now
            )
            await session.commit()
            await attach_generated_photos(session, node.config, rows)
            await session.commit()
        listings.update(rows)
    ap_ids = {key: row.ap_id for key, row in listings.items()}
    timings["local data"] = time.monotonic() - began
    lives = {node.spec.slug: node.live() for node in nodes}

    began = time.monotonic()
    await network.follow_everyone(list(lives.values()))
    log.info("demo: communities follow each other (%.1f s)", time.monotonic() - began)
    for a, b, message in PARTNERS:
        if a in lives and b in lives:
            await network.partner(lives[a], lives[b], message)
            for one, other in ((a, b), (b, a)):  # partners since before the history begins
                await network.date_partnership(
                    lives[one], lives[other], now - timedelta(days=200), now - timedelta(days=199)
                )
    log.info("demo: partnership approved (%.1f s)", time.monotonic() - began)
    await network.await_mirrors(list(lives.values()), _expected_mirrors(plan, specs))
    log.info("demo: listings mirrored (%.1f s)", time.monotonic() - began)
    for a, b, message in PROPOSALS:
        if a in lives and b in lives:
            await network.propose(lives[a], lives[b], message)
            for one, other in ((a, b), (b, a)):
                await network.date_partnership(
                    lives[one], lives[other], now - timedelta(days=2), now - timedelta(days=2)
                )
    timings["federation"] = time.monotonic() - began

    began = time.monotonic()
    await network.cross_exchanges(lives, plan, ap_ids, now)
    for slug, specs_left in live_local.items():
        await network.live_local_exchanges(lives[slug], plan, specs_left, ap_ids, now)
    timings["exchanges"] = time.monotonic() - began
    return timings


def _announce(data: Path, nodes: list[DemoNode], log_path: Path) -> None:
    document = {"nodes": [node.entry() for node in nodes]}
    (data / "demo.json").write_text(json.dumps(document, indent=2))
    print(f"Commons Node demo: {len(nodes)} nodes (logins also in {data / 'demo.json'})")
    for node in nodes:
        entry = node.entry()
        far = "  — far away, in Glasgow" if node.spec.far else ""
        print(f"  {node.config.name}: {entry['base_url']}/  ({entry['handle']}){far}")
        for role in ("steward", "member"):
            print(f"    {role}: {entry[role]['username']} / {entry[role]['password']}")
    print(f"Access log and errors: {log_path}")
    print("Press Ctrl+C to stop.", flush=True)


async def _prepare(
    data: Path, specs: Sequence[CommunitySpec], base_port: int, fresh: bool
) -> tuple[list[DemoNode], bool]:
    """(nodes, whether they are new and need their data)."""
    if not fresh:
        nodes = reusable(data, specs)
        if nodes is not None:
            return nodes, False
        if any((data / spec.slug).exists() for spec in COMMUNITIES):
            print(f"Starting the demo in {data} afresh (the earlier one is not complete).")
    wipe(data)
    schema = data / SCHEMA_FILE  # migrated once, copied for every node: quicker than four times
    await upgrade_to_head_async(default_database_url(data).replace("commons.db", SCHEMA_FILE))
    try:
        nodes = [
            await _init_node(data / spec.slug, spec, base_port + n, schema)
            for n, spec in enumerate(specs)
        ]
    finally:
        schema.unlink(missing_ok=True)
    return nodes, True


async def _until_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None if `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


def _check_ports_free(base_port: int, count: int) -> None:
    """Fail before touching any data when a port is taken (most likely by a running demo,
    whose data `--fresh` would otherwise delete under it)."""
    for port in range(base_port, base_port + count):
        with socket.socket() as probe:
            # As the server binds: connections of a demo just stopped do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))  # OSError(EADDRINUSE) while one listens


async def run_demo(
    count: int, base_port: int, data: Path, *, fresh: bool = False, scale: float = 1.0
) -> None:
    specs = communities_for(count)
    if not 0 < scale <= 1:
        raise ValueError("--scale must be more than 0 and at most 1")
    _check_ports_free(base_port, len(specs))
    data.mkdir(parents=True, exist_ok=True)
    log_path = (data / LOG_FILE).resolve()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    began = time.monotonic()
    with logging_to(log_path):
        nodes, new = await _prepare(data, specs, base_port, fresh)
        try:
            for node in nodes:
                await start(node)
            if new:
                print("Creating the sample communities (the first start takes a moment)…")
                timings = await _until_stopped(seed(nodes, scale), stop)
                if timings is None:
                    return  # interrupted: without the mark, the next start begins afresh
                (data / SEEDED_MARK).write_text(json.dumps(timings, indent=2))
                log.info("demo data ready in %.1f s: %s", time.monotonic() - began, timings)
            _announce(data, nodes, log_path)
            await stop.wait()
        finally:
            for node in nodes:
                if node.runner is not None:
                    await node.runner.cleanup()
