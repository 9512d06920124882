"""Browsing a large cache: `GET /api/v1/discovery/browse` against the bare queries behind it.

Run on demand: `./dev bench` or `PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_browse.py
[--listings 100000] [--communities 500] [--database-url URL]`. It builds a node
whose mirror holds `--listings` public listings from `--communities` remote
communities spread over Britain (SQLite in a temporary folder unless a
PostgreSQL URL is given, which must name an empty database), then for each
scenario times the same filters twice in the same run: through HTTP (auth,
validation, JSON, one page of 50) and as the bare repository query (the SQL
alone, same page). It prints p50/p95 of each and their ratio, and writes
them to `bench-results.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, select

from node.app import init_app
from node.appkeys import SESSIONS
from node.config import write_config
from node.services.provisioning import Person, provision_node
from storage.models import Community, RemoteListing, new_id, utcnow
from storage.repositories.discovery import BrowseFilters, BrowseRepository
from storage.search import Point
from tests.support.inprocess import serving
from tests.support.processes import free_port

PASSWORD = "bench-password"
REPEATS = 40
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

SCENARIOS: dict[str, tuple[str, BrowseFilters]] = {
    "newest": ("", BrowseFilters()),
    "category": ("category=garden", BrowseFilters(category="garden")),
    "radius_100km": (
        "lat=51.5072&lon=-0.1276&radius_km=100",
        BrowseFilters(point=LONDON, radius_km=100),
    ),
    "radius_by_distance": (
        "lat=51.5072&lon=-0.1276&radius_km=100&sort=distance",
        BrowseFilters(point=LONDON, radius_km=100, sort="distance"),
    ),
    "common_word": (f"q={COMMON}", BrowseFilters(q=COMMON)),
    "common_word_relevance": (
        f"q={COMMON}&sort=relevance",
        BrowseFilters(q=COMMON, sort="relevance"),
    ),
    "rare_word": (f"q={RARE}", BrowseFilters(q=RARE)),
    "rare_word_relevance": (f"q={RARE}&sort=relevance", BrowseFilters(q=RARE, sort="relevance")),
    "word_category_radius": (
        f"q={COMMON}&category=bikes&lat=51.5072&lon=-0.1276&radius_km=100",
        BrowseFilters(q=COMMON, category="bikes", point=LONDON, radius_km=100),
    ),
    "kind_category_radius_distance": (
        "kind=need&category=tools&lat=53.48&lon=-2.24&radius_km=60&sort=distance",
        BrowseFilters(
            kind="need", category="tools", point=Point(53.48, -2.24), radius_km=60, sort="distance"
        ),
    ),
}


def _text(rng: random.Random) -> str:
    words = rng.sample(FILLER, 6)
    if rng.random() < 0.33:
        words.append(COMMON)
    if rng.random() < 0.0005:
        words.append(RARE)
    rng.shuffle(words)
    return " ".join(words)


async def _fill(app: Any, listings: int, communities: int, rng: random.Random) -> None:
    async with app[SESSIONS]() as session:
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
        await session.commit()
        remote = select(Community.id).where(Community.is_local.is_(False))
        ids = list((await session.scalars(remote)).all())
        now = utcnow()
        batch: list[dict[str, Any]] = []
        for n in range(listings):
            located = rng.random() < 0.4
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
                    "published_at": now - timedelta(minutes=n),
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


async def _times(call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm-up
    out = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _p(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1]


async def run(listings: int, communities: int, database_url: str | None) -> dict[str, Any]:
    rng = random.Random(7)
    root = Path(tempfile.mkdtemp(prefix="bench-browse-"))
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
    app = init_app(config)
    results: dict[str, Any] = {"listings": listings, "communities": communities, "scenarios": {}}
    async with serving(app, port), aiohttp.ClientSession() as http:
        started = time.perf_counter()
        await _fill(app, listings, communities, rng)
        results["fill_seconds"] = round(time.perf_counter() - started, 1)
        base = config.base_url
        login = {"username": "bench", "password": PASSWORD}
        async with http.post(f"{base}/api/v1/auth/token", json=login) as resp:
            token = (await resp.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        for name, (query, filters) in SCENARIOS.items():

            async def over_http(query: str = query) -> None:
                url = f"{base}/api/v1/discovery/browse?{query}&limit=50"
                async with http.get(url, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()

            async def bare(filters: BrowseFilters = filters) -> None:
                async with app[SESSIONS]() as session:
                    await BrowseRepository(session).page(1, filters, None, 50)

            via_http, via_sql = await _times(over_http), await _times(bare)
            row = {
                "http_p50_ms": round(_p(via_http, 50), 2),
                "http_p95_ms": round(_p(via_http, 95), 2),
                "sql_p50_ms": round(_p(via_sql, 50), 2),
                "sql_p95_ms": round(_p(via_sql, 95), 2),
            }
            row["p95_ratio"] = round(row["http_p95_ms"] / max(row["sql_p95_ms"], 0.001), 2)
            results["scenarios"][name] = row
            print(
                f"{name:32} http p95 {row['http_p95_ms']:8.2f} ms   "
                f"sql p95 {row['sql_p95_ms']:8.2f} ms   ratio {row['p95_ratio']:5.2f}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.listings, args.communities, args.database_url))
    Path("bench-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("written to bench-results.json")


if __name__ == "__main__":
    main()
