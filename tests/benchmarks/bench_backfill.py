"""Backfill: a partner's listings mirrored by a real node's job, against the bare work.

Run on demand: `python -m tests.benchmarks.bench_backfill [--quick] [--database-url URL]`
(SQLite, or the empty PostgreSQL database at URL), or as part of the suite,
`python -m tests.benchmarks [--quick] [--postgres URL]`, which runs it on SQLite
and on a throw-away PostgreSQL database beside URL's.

What it does, on a two-core machine:
- a fake partner in its own process (core 1) serves `--listings` partner-only
  listings as a paged collection, `--page-size` to a page, every page
  rendered before anything is timed;
- a real `commons-node serve` (core 0; SQLite in a temporary folder, or the
  PostgreSQL database `--database-url`) holds an active
  partnership with it; after a one-page warm-up from another partner (what
  a node does once after it starts is not timed), the benchmark queues the
  backfill job and times it from the node taking it to done, twice: a first
  backfill (every listing new) and a second one (nothing changed: what each
  reconciliation round does);
- after each such pair, with the node idle and on the node's core, the
  baselines: fetching and parsing every page (plain GETs, orjson), turning
  the items into rows (the node's own parsing and cleaning), and the bare
  bulk INSERT of the same rows through SQLAlchemy Core, one transaction a
  page; `--rounds` alternations (3, or 1 with `--quick`), medians;
- reads the node's resident memory before and its peak (VmHWM) after.
It prints listings/s beside the baselines and the ratios, and records them
in `bench-results.json`. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from sqlalchemy import delete, func, insert, select

from federation.builders import build_note
from federation.contexts import default_context
from federation.keys import generate_key_pair
from node.domain import urls
from node.domain.conversion import note_to_mirrored_fields
from node.protocol.job_handlers import backfill_key, enqueue_backfill
from node.protocol.mirror import _note_from_item
from storage.engine import create_engine, create_session_factory
from storage.models import Community, CommunityPartnership, Job, RemoteListing, new_id, utcnow
from tests.benchmarks.results import record_results
from tests.support.processes import free_port, init_node, wait_until_up

NODE_CORE, PARTNER_CORE = 0, 1
ACTIVITY_JSON = "application/activity+json"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORDS = [
    "ladder",
    "drill",
    "tent",
    "kettle",
    "pump",
    "saw",
    "spanner",
    "sewing",
    "machine",
    "jacket",
    "books",
    "garden",
]


def partner_pages(base: str, slug: str, viewer: str, listings: int, page_size: int) -> list[bytes]:
    """The collection document, then each page, as a node would send them (Creates of Notes)."""
    actor = f"{base}/c/{slug}"
    collection = urls.partner_collection(actor)
    pages = (listings + page_size - 1) // page_size
    documents = [
        orjson.dumps(
            {
                "@context": default_context(),
                "id": collection,
                "type": "OrderedCollection",
                "totalItems": listings,
                "first": f"{collection}?page=1",
            }
        )
    ]
    for page in range(1, pages + 1):
        items = []
        for n in range((page - 1) * page_size, min(page * page_size, listings)):
            note = build_note(
                note_id=f"{actor}/listings/{n}",
                attributed_to=actor,
                title=f"{WORDS[n % len(WORDS)].title()} number {n}",
                description=" ".join(WORDS[(n + k) % len(WORDS)] for k in range(20)),
                to=[viewer],
                cc=[],
                published=T0 + timedelta(minutes=n),
                kind="offer" if n % 3 else "need",
                category="tools",
                status="active",
                visibility="partners",
                url=f"{actor}/listings/{n}",
            )
            note.pop("@context", None)
            items.append(
                {
                    "id": f"{actor}/listings/{n}/create",
                    "type": "Create",
                    "actor": actor,
                    "to": [viewer],
                    "object": note,
                }
            )
        document: dict[str, Any] = {
            "@context": default_context(),
            "id": f"{collection}?page={page}",
            "type": "OrderedCollectionPage",
            "partOf": collection,
            "orderedItems": items,
        }
        if page < pages:
            document["next"] = f"{collection}?page={page + 1}"
        documents.append(orjson.dumps(document))
    return documents


def serve_partner(port: int, viewer: str, listings: int, page_size: int) -> None:
    """The fake partner's process: every page rendered first, then served as asked."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > PARTNER_CORE:
        os.sched_setaffinity(0, {PARTNER_CORE})
    base = f"http://127.0.0.1:{port}"
    documents = {
        "partner": partner_pages(base, "partner", viewer, listings, page_size),
        "warmup": partner_pages(base, "warmup", viewer, page_size, page_size),
    }

    async def collection(request: web.Request) -> web.Response:
        pages = documents.get(request.match_info["slug"], [])
        page = int(request.query.get("page", "0"))
        if not 0 <= page < len(pages):
            raise web.HTTPNotFound()
        return web.Response(body=pages[page], content_type=ACTIVITY_JSON)

    app = web.Application()
    app.router.add_get("/c/{slug}/partner-listings", collection)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_partner(port: int, viewer: str, listings: int, page_size: int) -> Any:
    process = multiprocessing.get_context("spawn").Process(
        target=serve_partner, args=(port, viewer, listings, page_size), daemon=True
    )
    process.start()
    url = f"http://127.0.0.1:{port}/c/partner/partner-listings"
    for _ in range(1200):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("the fake partner did not start")


def start_node(data: Path, base_url: str) -> subprocess.Popen[str]:
    log = (data / "serve.log").open("w")
    command = [sys.executable, "-m", "node.cli", "serve", "--data", str(data)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(NODE_CORE), *command]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    wait_until_up(f"{base_url}/healthz", process)
    return process


def profile(pid: int, run: str) -> subprocess.Popen[bytes] | None:
    """py-spy on the node during a backfill, when BENCH_PROFILE names the files to
    write (`<name>.first`, `<name>.again`: collapsed stacks; `pip install py-spy`)."""
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        return None
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            f"{target}.{run}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(60)


def memory_mb(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def add_partner(node_db: str, partner_base: str, slug: str) -> tuple[int, int]:
    """The partner's community row and an active partnership with ours."""
    engine = create_engine(node_db)
    try:
        async with engine.begin() as conn:
            local_id = (
                await conn.execute(select(Community.id).where(Community.is_local))
            ).scalar_one()
            actor = f"{partner_base}/c/{slug}"
            remote_id = (
                await conn.execute(
                    insert(Community).returning(Community.id),
                    {
                        "ap_id": actor,
                        "is_local": False,
                        "slug": slug,
                        "host": partner_base.removeprefix("http://"),
                        "name": slug.title(),
                        "base_url": partner_base,
                        "inbox_url": f"{actor}/inbox",
                        "key_id": f"{actor}#main-key",
                        "public_key_pem": generate_key_pair()[1],
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    },
                )
            ).scalar_one()
            await conn.execute(
                insert(CommunityPartnership),
                {
                    "id": new_id(),
                    "local_community_id": local_id,
                    "remote_community_id": remote_id,
                    "state": "active",
                    "initiated_by": "them",
                    "follow_activity_id": f"{actor}/follows/bench",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                },
            )
    finally:
        await engine.dispose()
    return local_id, remote_id


async def run_backfill(node_db: str, local_id: int, remote_id: int, deadline: float) -> float:
    """Queue the backfill job and wait for it; seconds from the node taking it to done.

    The node wakes its job worker at once for work it queues itself; this job
    comes from outside, so it waits for the worker's next poll, not timed.
    """
    engine = create_engine(node_db)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            local = await session.get(Community, local_id)
            remote = await session.get(Community, remote_id)
            assert local is not None and remote is not None
            assert await enqueue_backfill(session, local, remote)
            await session.commit()
            key = backfill_key(local, remote)
            job_id = (await session.scalars(select(Job.id).where(Job.dedupe_key == key))).one()
        end = time.monotonic() + deadline
        start: float | None = None
        while time.monotonic() < end:
            async with engine.connect() as conn:
                claimed, finished = (
                    await conn.execute(
                        select(Job.locked_until, Job.finished_at).where(Job.id == job_id)
                    )
                ).one()
            if start is None and (claimed is not None or finished is not None):
                start = time.monotonic()
            if finished is not None:
                assert start is not None
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        raise TimeoutError("the backfill did not finish")
    finally:
        await engine.dispose()


async def mirrored(node_db: str, origin_id: int) -> int:
    engine = create_engine(node_db)
    try:
        async with engine.connect() as conn:
            count = select(func.count(RemoteListing.id)).where(
                RemoteListing.origin_community_id == origin_id
            )
            return int((await conn.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def fetch_and_parse(collection: str) -> tuple[float, list[list[Any]]]:
    """The bare network side: every page fetched and parsed, one after another."""
    pages: list[list[Any]] = []
    start = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        url: str | None = f"{collection}?page=1"
        while url is not None:
            async with http.get(url) as response:
                page = orjson.loads(await response.read())
            pages.append(page)
            url = page.get("next")
    return time.perf_counter() - start, pages


def page_rows(pages: list[Any], remote_id: int) -> list[list[dict[str, Any]]]:
    """The rows the node would write, built as it builds them (parse, then convert)."""
    now = utcnow()
    rows = []
    for page in pages:
        notes = (_note_from_item(item, page) for item in page["orderedItems"])
        rows.append(
            [
                {
                    "id": new_id(),
                    "ap_id": note.id,
                    "origin_community_id": remote_id,
                    "audience": "partners",
                    "received_at": now,
                    "updated_at": now,
                    "is_tombstoned": False,
                    **fields,
                    "shown_at": fields["published_at"] or now,
                }
                for note in notes
                if note is not None
                for fields in (note_to_mirrored_fields(note).__dict__,)
            ]
        )
    return rows


async def bare_insert(node_db: str, rows: list[list[dict[str, Any]]]) -> float:
    """The bare write side: the same rows, one Core INSERT and one transaction a page."""
    engine = create_engine(node_db)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(RemoteListing))
        start = time.perf_counter()
        for page in rows:
            async with engine.begin() as conn:
                await conn.execute(insert(RemoteListing), page)
        seconds = time.perf_counter() - start
        async with engine.begin() as conn:
            await conn.execute(delete(RemoteListing))  # the next round starts empty
        return seconds
    finally:
        await engine.dispose()


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


async def measure(
    database_url: str | None, listings: int, page_size: int, rounds: int
) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    node_dir = data / "node"
    node_db = database_url or f"sqlite:///{data}/node.db"
    port, partner_port = free_port(), free_port()
    base_url = init_node(
        node_dir, slug="bench", name="Bench", port=port, extra=["--database-url", node_db]
    )
    pages = (listings + page_size - 1) // page_size
    with (node_dir / "config.toml").open("a") as config:
        config.write(
            f"backfill_max_items = {listings * 2}\nbackfill_max_pages = {pages * 2}\n"
            f"backfill_max_bytes = {listings * 4096}\nworker_poll_seconds = 0.2\n"
        )
    partner_base = f"http://127.0.0.1:{partner_port}"
    local_id, remote_id = await add_partner(node_db, partner_base, "partner")
    _, warmup_id = await add_partner(node_db, partner_base, "warmup")
    partner = start_partner(partner_port, f"{base_url}/c/bench", listings, page_size)
    figures: dict[str, float] = {"listings": listings, "page_size": page_size}
    times: dict[str, list[float]] = {
        "first": [],
        "again": [],
        "fetch": [],
        "rows": [],
        "insert": [],
    }
    collection = urls.partner_collection(f"{partner_base}/c/partner")
    node = start_node(node_dir, base_url)
    try:
        # One page from another partner first: what a node does once after it
        # starts (loading the signing key, configuring the ORM) is not timed.
        await run_backfill(node_db, local_id, warmup_id, 600)
        figures["rss_before_mb"] = memory_mb(node.pid, "VmRSS")
        for n in range(rounds):
            # The node and its baselines alternate, so both see the same machine.
            pin(PARTNER_CORE)
            profiler = profile(node.pid, f"first{n}")
            times["first"].append(await run_backfill(node_db, local_id, remote_id, 600))
            stop_profiler(profiler)
            assert await mirrored(node_db, remote_id) == listings, "not every listing was kept"
            profiler = profile(node.pid, f"again{n}")
            times["again"].append(await run_backfill(node_db, local_id, remote_id, 600))
            stop_profiler(profiler)
            pin(NODE_CORE)  # the node is idle meanwhile
            fetch_seconds, fetched = await fetch_and_parse(collection)
            start = time.perf_counter()
            rows = page_rows(fetched, remote_id)
            times["rows"].append(time.perf_counter() - start)
            times["fetch"].append(fetch_seconds)
            times["insert"].append(await bare_insert(node_db, rows))
            del fetched, rows
        figures["rss_peak_mb"] = memory_mb(node.pid, "VmHWM")
    finally:
        node.terminate()
        node.wait(30)
        partner.terminate()
        partner.join(10)
        shutil.rmtree(data, ignore_errors=True)
    first, again, fetch_seconds, convert_seconds, insert_seconds = (
        statistics.median(times[key]) for key in ("first", "again", "fetch", "rows", "insert")
    )
    bound = fetch_seconds + convert_seconds + insert_seconds
    figures.update(
        {
            "first_per_s": listings / first,
            "again_per_s": listings / again,
            "fetch_parse_per_s": listings / fetch_seconds,
            "to_rows_per_s": listings / convert_seconds,
            "bare_insert_per_s": listings / insert_seconds,
            "bare_bound_per_s": listings / bound,
            "first_ratio": bound / first,
            "again_ratio": bound / again,
            "rss_growth_mb": figures["rss_peak_mb"] - figures["rss_before_mb"],
        }
    )
    return figures


def report(name: str, figures: dict[str, float]) -> None:
    print(
        f"\nbackfill, {name}: {figures['listings']:.0f} partner listings,"
        f" {figures['page_size']:.0f} a page"
    )
    print(f"  first backfill    {figures['first_per_s']:8.0f} listings/s")
    print(f"  again, unchanged  {figures['again_per_s']:8.0f} listings/s")
    print(f"  baseline: fetch + JSON parse  {figures['fetch_parse_per_s']:8.0f}/s")
    print(f"            notes -> rows       {figures['to_rows_per_s']:8.0f}/s")
    print(f"            bare Core INSERT    {figures['bare_insert_per_s']:8.0f}/s")
    print(
        f"            all three, serially {figures['bare_bound_per_s']:8.0f}/s"
        f"   ratio first {figures['first_ratio']:.2f}, again {figures['again_ratio']:.2f}"
    )
    print(
        f"  node RSS {figures['rss_before_mb']:.0f} MB before,"
        f" peak {figures['rss_peak_mb']:.0f} MB (+{figures['rss_growth_mb']:.0f} MB)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 listings")
    parser.add_argument("--listings", type=int)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, help="alternations of node and baselines (medians)")
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (else SQLite)"
    )
    args = parser.parse_args(argv)
    listings = args.listings or (2_000 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 3)
    name = "postgresql" if args.database_url else "sqlite"
    figures = asyncio.run(measure(args.database_url or None, listings, args.page_size, rounds))
    report(name, figures)
    record_results({f"backfill.{name}.{key}": value for key, value in figures.items()})


if __name__ == "__main__":
    main()
