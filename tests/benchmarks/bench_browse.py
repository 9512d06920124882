"""Reading a large cache: browse and the listings API against the bare queries behind them.

Run on demand: `python -m tests.benchmarks [--quick]` (every benchmark), or this one alone:
`.venv/bin/python -m tests.benchmarks.bench_browse [--listings 100000] [--communities 500]
[--database-url URL]`. It builds a node whose mirror holds `--listings` public
listings from `--communities` remote communities spread over Britain (SQLite in
a temporary folder, or the PostgreSQL database `--database-url` names, which
is emptied first), starts it as a real `commons-node serve` process, and for
each scenario times, in the same run:

- through HTTP: `GET /api/v1/discovery/browse` (or `/api/v1/listings`), a page
  of 50, from this process: auth, validation, the queries, JSON;
- the bare queries: the repository call behind the endpoint, for the same
  filters and page, in this process on its own connection (the SQL and its rows,
  nothing else).

It prints p95 of both and the ratio of the p95s, and, since wall-clock times
on a shared machine measure the scheduler as much as the code, the CPU time
each request cost the node process beside the CPU time of the bare query in
this one; then the node's RSS after the run. `--json` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import random
import statistics
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w
from sqlalchemy import func, insert, select, text

from node.config import CONFIG_FILE, load_config, write_config
from node.services.provisioning import Person, provision_node
from storage.engine import create_engine, create_session_factory
from storage.models import Community, RemoteListing, new_id, utcnow
from storage.repositories import ListingFilters
from storage.repositories.discovery import BrowseFilters, BrowseRepository
from storage.repositories.remote_listings import RemoteListingRepository
from storage.search import Point
from tests.support.processes import free_port, serve_node

PASSWORD = "bench-password"
COMMON = "bike"  # in about a third of the listings
RARE = "theodolite"  # in about one in two thousand
FILLER = [
    "drill",
    "ladder",
    "tent",
    "kettle",
    "pump",
    "saw",
    "spanner",
    "sewing",
    "machine",
    "jacket",
    "coat",
    "books",
    "garden",
    "hoe",
    "rake",
    "seeds",
    "apples",
    "bread",
    "childcare",
    "lift",
    "van",
    "trailer",
    "repair",
    "lesson",
]
CATEGORIES = ["tools", "kitchen", "garden", "bikes", "books", "food", "transport", "skills"]
LONDON = Point(51.5072, -0.1276)
MANCHESTER = Point(53.48, -2.24)

Bare = Callable[[Any, int], Awaitable[Any]]


def _browse(filters: BrowseFilters) -> Bare:
    async def run(session: Any, viewer: int) -> Any:
        return await BrowseRepository(session).page(viewer, filters, None, 50)

    return run


def _listings(filters: ListingFilters) -> Bare:
    async def run(session: Any, viewer: int) -> Any:
        return await RemoteListingRepository(session).page_visible_to(
            viewer, filters, None, 50, include_public=True, include_partners=True
        )

    return run


# name -> (kind, url path and query, bare query); kind: what the target is.
SCENARIOS: dict[str, tuple[str, str, Bare]] = {
    "browse_newest": ("category", "discovery/browse?", _browse(BrowseFilters())),
    "browse_category": (
        "category",
        "discovery/browse?category=garden",
        _browse(BrowseFilters(category="garden")),
    ),
    "browse_radius_100km": (
        "radius",
        "discovery/browse?lat=51.5072&lon=-0.1276&radius_km=100",
        _browse(BrowseFilters(point=LONDON, radius_km=100)),
    ),
    "browse_radius_nearest": (
        "radius",
        "discovery/browse?lat=51.5072&lon=-0.1276&radius_km=100&sort=distance",
        _browse(BrowseFilters(point=LONDON, radius_km=100, sort="distance")),
    ),
    "browse_common_word": (
        "text",
        f"discovery/browse?q={COMMON}",
        _browse(BrowseFilters(q=COMMON)),
    ),
    "browse_common_word_relevance": (
        "text",
        f"discovery/browse?q={COMMON}&sort=relevance",
        _browse(BrowseFilters(q=COMMON, sort="relevance")),
    ),
    "browse_rare_word": ("text", f"discovery/browse?q={RARE}", _browse(BrowseFilters(q=RARE))),
    "browse_rare_word_relevance": (
        "text",
        f"discovery/browse?q={RARE}&sort=relevance",
        _browse(BrowseFilters(q=RARE, sort="relevance")),
    ),
    "browse_word_category_radius": (
        "combination",
        f"discovery/browse?q={COMMON}&category=bikes&lat=51.5072&lon=-0.1276&radius_km=100",
        _browse(BrowseFilters(q=COMMON, category="bikes", point=LONDON, radius_km=100)),
    ),
    "browse_kind_category_radius_nearest": (
        "combination",
        "discovery/browse?kind=need&category=tools&lat=53.48&lon=-2.24&radius_km=60&sort=distance",
        _browse(
            BrowseFilters(
                kind="need", category="tools", point=MANCHESTER, radius_km=60, sort="distance"
            )
        ),
    ),
    "listings_include_public": (
        "category",
        "listings?include_public=true&include_partners=true",
        _listings(ListingFilters()),
    ),
    "listings_include_public_category": (
        "category",
        "listings?include_public=true&include_partners=true&category=garden&status=active",
        _listings(ListingFilters(category="garden", status="active")),
    ),
}
TARGET_MS = {"category": 5.0, "radius": 5.0, "text": 20.0, "combination": 30.0}
MAX_RATIO = 3.0


def _text(rng: random.Random) -> str:
    words = rng.sample(FILLER, 6)
    if rng.random() < 0.33:
        words.append(COMMON)
    if rng.random() < 0.0005:
        words.append(RARE)
    rng.shuffle(words)
    return " ".join(words)


async def _fill(sessions: Any, listings: int, communities: int, rng: random.Random) -> None:
    async with sessions() as session:
        rows = [
            {
                "ap_id": f"https://n{i % 50}.example/c/c{i}",
                "is_local": False,
                "actor_type": "Group",
                "slug": f"c{i}",
                "host": f"n{i % 50}.example",
                "name": f"Community {i}",
                "description": "",
                "latitude": round(rng.uniform(50.2, 56.0), 2),
                "longitude": round(rng.uniform(-5.0, 1.5), 2),
                "base_url": f"https://n{i % 50}.example",
                "is_discoverable": True,
                "public_offer_count": 0,
                "public_need_count": 0,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for i in range(communities)
        ]
        await session.execute(insert(Community), rows)
        remote = select(Community.id).where(Community.is_local.is_(False))
        ids = list((await session.scalars(remote)).all())
        now = utcnow()
        batch: list[dict[str, Any]] = []
        if session.get_bind().dialect.name == "sqlite":
            for action in ("insert", "update", "delete"):  # indexed in bulk afterwards
                await session.execute(text(f"DROP TRIGGER remote_listings_search_{action}"))
        for n in reversed(range(listings)):  # oldest first, as listings arrive
            located = rng.random() < 0.4
            published = now - timedelta(minutes=n)
            batch.append(
                {
                    "id": new_id(),
                    "ap_id": f"https://x.example/l/{n}",
                    "origin_community_id": rng.choice(ids),
                    "audience": "public",
                    "kind": "offer" if rng.random() < 0.7 else "need",
                    "title": " ".join(_text(rng).split()[:3]),
                    "description": _text(rng),
                    "category": rng.choice(CATEGORIES),
                    "status": "active",
                    "latitude": round(rng.uniform(50.2, 56.0), 2) if located else None,
                    "longitude": round(rng.uniform(-5.0, 1.5), 2) if located else None,
                    "published_at": published,
                    "shown_at": published,
                    "received_at": now,
                    "updated_at": now,
                    "is_tombstoned": False,
                }
            )
            if len(batch) == 5000:
                await session.execute(insert(RemoteListing), batch)
                batch = []
        if batch:
            await session.execute(insert(RemoteListing), batch)
        await session.commit()
        if session.get_bind().dialect.name == "sqlite":
            await session.run_sync(lambda s: _index_in_bulk(s.connection()))
        await session.execute(text("ANALYZE"))
        await session.commit()


def _index_in_bulk(connection: Any) -> None:
    """What the search triggers would have done row by row, in two statements (SQLite),
    as migration 0013 indexes existing rows; then the triggers again."""
    migration = importlib.import_module("storage.migrations.versions.0016_browse_indexes")
    base = migration._base("shown_at")
    connection.exec_driver_sql(
        "INSERT INTO listing_search_keys (id, source, ref)"
        " SELECT b + row_number() OVER (PARTITION BY b ORDER BY id) - 1, 'remote', id"
        f" FROM (SELECT id, {base} AS b FROM remote_listings)"
    )
    connection.exec_driver_sql(
        "INSERT INTO listing_search (rowid, title, description, category)"
        " SELECT k.id, t.title, t.description, t.category FROM remote_listings t"
        " JOIN listing_search_keys k ON k.source = 'remote' AND k.ref = t.id ORDER BY k.id"
    )
    for statement in migration._sqlite_triggers("remote_listings", "remote", "shown_at"):
        connection.exec_driver_sql(statement)


async def _empty_postgresql(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def _times(call: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    for _ in range(3):
        await call()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _p(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far: what a request costs, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def run(
    listings: int = 100_000,
    communities: int = 500,
    database_url: str | None = None,
    repeats: int = 60,
    data: Path | None = None,
) -> dict[str, Any]:
    rng = random.Random(7)
    port = free_port()
    if data is not None and (data / CONFIG_FILE).exists():
        root = data  # filled by an earlier run: only the port changes
        values = tomllib.loads((root / CONFIG_FILE).read_text())
        values["base_url"] = f"http://127.0.0.1:{port}"
        (root / CONFIG_FILE).write_text(tomli_w.dumps(values))
        config = load_config(root, environ={})
        fill = False
    else:
        root = data or Path(tempfile.mkdtemp(prefix="bench-browse-"))
        root.mkdir(parents=True, exist_ok=True)
        if database_url:
            await _empty_postgresql(database_url)
        config = write_config(
            root,
            base_url=f"http://127.0.0.1:{port}",
            slug="bench",
            name="Bench",
            database_url=database_url,
            allow_private_addresses=True,
        )
        await provision_node(config, people=[Person("bench", PASSWORD, "steward")])
        fill = True
    engine = create_engine(config.database_url)
    sessions = create_session_factory(engine)
    started = time.perf_counter()
    if fill:
        await _fill(sessions, listings, communities, rng)
    async with sessions() as session:
        viewer = (
            await session.scalars(select(Community.id).where(Community.is_local.is_(True)))
        ).one()
        listings = int(await session.scalar(select(func.count()).select_from(RemoteListing)) or 0)
    database = "postgresql" if "postgresql" in config.database_url else "sqlite"
    results: dict[str, Any] = {
        "database": database,
        "listings": listings,
        "communities": communities,
        "fill_seconds": round(time.perf_counter() - started, 1),
        "scenarios": {},
    }
    node = serve_node(root, config.base_url)
    try:
        async with aiohttp.ClientSession() as http:
            login = {"username": "bench", "password": PASSWORD}
            async with http.post(f"{config.base_url}/api/v1/auth/token", json=login) as resp:
                token = (await resp.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            print(f"browse at {listings} listings, {database}: p95 in ms", flush=True)
            for name, (kind, path, bare) in SCENARIOS.items():

                async def over_http(path: str = path) -> None:
                    url = f"{config.base_url}/api/v1/{path}&limit=50"
                    async with http.get(url, headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()

                async def bare_sql(bare: Bare = bare) -> None:
                    async with sessions() as session:
                        await bare(session, viewer)

                cpu = time.process_time()
                via_sql = await _times(bare_sql, repeats)
                sql_cpu = (time.process_time() - cpu) * 1000 / (repeats + 3)
                cpu = _cpu_seconds(node.process.pid)
                via_http = await _times(over_http, repeats)
                http_cpu = (_cpu_seconds(node.process.pid) - cpu) * 1000 / (repeats + 3)
                row = {
                    "target_ms": TARGET_MS[kind],
                    "http_cpu_ms": round(http_cpu, 2),
                    "sql_cpu_ms": round(sql_cpu, 2),
                    "http_p50_ms": round(_p(via_http, 50), 2),
                    "http_p95_ms": round(_p(via_http, 95), 2),
                    "sql_p50_ms": round(_p(via_sql, 50), 2),
                    "sql_p95_ms": round(_p(via_sql, 95), 2),
                }
                row["ratio"] = round(row["http_p95_ms"] / max(row["sql_p95_ms"], 0.001), 2)
                row["met"] = row["http_p95_ms"] <= TARGET_MS[kind] and row["ratio"] <= MAX_RATIO
                results["scenarios"][name] = row
                print(
                    f"  {name:38} http {row['http_p95_ms']:7.2f}  bare SQL {row['sql_p95_ms']:7.2f}"
                    f"  ratio {row['ratio']:5.2f}  target {TARGET_MS[kind]:4.0f}"
                    f"  {'met' if row['met'] else 'NOT met'}"
                    f"  | CPU/request node {http_cpu:6.2f} bare {sql_cpu:6.2f}",
                    flush=True,
                )
        results["node_rss_mb"] = _rss_mb(node.process.pid)
        print(f"  node RSS after the run: {results['node_rss_mb']} MB (target 200)", flush=True)
    finally:
        node.stop()
        await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--data", type=Path, default=None, help="keep the node here; reuse it if already filled"
    )
    args = parser.parse_args()
    results = asyncio.run(
        run(args.listings, args.communities, args.database_url, args.repeats, args.data)
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
