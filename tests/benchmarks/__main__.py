"""The benchmark suite: `python -m tests.benchmarks [--quick] [--postgres URL]`.

Each benchmark runs as its own module (`python -m tests.benchmarks.bench_...`),
in its own process, one after another; each prints its figures beside a
baseline measured in the same run. The figures go to `bench-results.json`
(name -> value, every ratio included), which is not committed.

- `bench_browse`: browse and the listings API at 100k mirrored listings (20k with
  `--quick`) against the bare queries, on SQLite, and on PostgreSQL when a URL
  is given (`--postgres` or `COMMONS_BENCH_POSTGRES_URL`; that database is emptied).
- `bench_jsonld`: the JSON-LD fast path against pyld.

The network simulation (`python -m tests.benchmarks.bench_discovery`) is run on
its own: it measures rounds and requests, not time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path("bench-results.json")


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
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
