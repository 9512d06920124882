"""The benchmark suite: `python -m tests.benchmarks [--quick] [--postgres URL]`.

Each benchmark runs as its own module (`python -m tests.benchmarks.bench_...`),
in its own process, one after another; each prints its figures beside a
baseline measured in the same run. The figures go to `bench-results.json`
(name -> value, every ratio included), which is not committed.

- `bench_browse`: browse and the listings API at 100k mirrored listings (20k with
  `--quick`) against the bare queries, on SQLite, and on PostgreSQL when a URL
  is given (`--postgres` or `COMMONS_BENCH_POSTGRES_URL`; that database is emptied).
- `bench_jsonld`: the JSON-LD fast path against pyld.
- `bench_inbox`: a real node's inbox under wrk against bare aiohttp (intake,
  duplicates, handling), when `wrk` and `taskset` are installed.
- `bench_fanout` and `bench_slow_peer`: the delivery worker against the bound
  of signing and posting, and against one-at-a-time sending.
- `bench_backfill`: a real node's backfill job mirroring a partner's paged
  listings against fetching, converting and bare-inserting the same rows.

With a PostgreSQL URL, the inbox, delivery and backfill benchmarks each run
again in a throw-away database made beside it.

The network simulation (`python -m tests.benchmarks.bench_discovery`) is run on
its own: it measures rounds and requests, not time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.benchmarks.results import RESULTS, record_results
from tests.benchmarks.throwaway import throwaway_database


def _module(name: str, *args: str) -> None:
    print(f"== {name} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", f"tests.benchmarks.{name}", *args], check=True)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, under a minute")
    parser.add_argument("--postgres", default=os.environ.get("COMMONS_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    RESULTS.unlink(missing_ok=True)  # each module adds its figures to a fresh file
    size = ["--listings", "20000", "--repeats", "30"] if args.quick else []
    results: dict[str, Any] = {}
    databases = [("sqlite", [])] + (
        [("postgresql", ["--database-url", args.postgres])] if args.postgres else []
    )
    for database, extra in databases:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            _module("bench_browse", *size, *extra, "--json", out.name)
            _flatten(f"browse.{database}", json.loads(Path(out.name).read_text()), results)
    _module("bench_jsonld")
    record_results(results, RESULTS)
    quick = ["--quick"] if args.quick else []
    if shutil.which("wrk") and shutil.which("taskset"):
        _module("bench_inbox", *quick, "--database-url", args.postgres or "")
    else:
        print("== bench_inbox skipped: it needs wrk and taskset (apt-get install wrk)")
    for name in ("bench_fanout", "bench_slow_peer", "bench_backfill"):
        _module(name, *quick)
        if args.postgres:
            with_database(name, quick, args.postgres)
    print(f"wrote {RESULTS}")


def with_database(name: str, quick: list[str], server_url: str) -> None:
    """Run benchmark `name` on a throw-away PostgreSQL database beside `server_url`'s."""

    async def run() -> None:
        async with throwaway_database(server_url, name.removeprefix("bench_")) as url:
            await asyncio.to_thread(_module, name, *quick, "--database-url", url)

    asyncio.run(run())


if __name__ == "__main__":
    main()
