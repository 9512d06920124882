"""How much the JSON-LD fast path saves over running every document through pyld.

Run on demand: `/work/venv/bin/python tests/benchmarks/bench_jsonld.py`.
Both paths are timed in the same run, on the same documents, after a warm-up
(so pyld's resolved-context cache is hot, as it is in a running node), and
the best of several repeats is reported to keep scheduler noise out.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from federation.builders import build_activity, build_note
from federation.jsonld import normalize_activity, normalize_with_pyld
from federation.jsonld_fastpath import takes_fast_path
from federation.vocab import PUBLIC, Place

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
REPEATS = 5


def our_create() -> dict[str, Any]:
    note = build_note(
        note_id="https://commons.example/listings/42",
        attributed_to="https://commons.example/c/riverside",
        title="Track pump to lend",
        description="Presta and Schrader valves.\n\nBack by Sunday.",
        to=[PUBLIC],
        cc=["https://commons.example/c/riverside/followers"],
        published=datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC),
        kind="offer",
        category="tools",
        status="open",
        visibility="public",
        location=Place(52.52, 13.40),
    )
    return build_activity(
        "Create",
        "https://commons.example/activities/42",
        "https://commons.example/c/riverside",
        note,
        to=[PUBLIC],
    )


def documents() -> dict[str, dict[str, Any]]:
    loaded = {
        name: json.loads((FIXTURES / f"{name}.json").read_text())
        for name in ("create_note", "actor", "follow", "accept_follow")
    }
    return {"mastodon " + name: doc for name, doc in loaded.items()} | {
        "commons create": our_create()
    }


def per_call_seconds(operation: Callable[[], object]) -> float:
    timer = timeit.Timer(operation)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=REPEATS, number=number)) / number


def main() -> None:
    print(f"{'document':<26}{'fast path':>12}{'pyld path':>12}{'speed-up':>10}")
    fast_total = slow_total = 0.0
    for label, document in documents().items():
        assert takes_fast_path(document), f"{label} should take the fast path"
        normalize_with_pyld(document)  # warm pyld's context cache
        fast = per_call_seconds(partial(normalize_activity, document))
        slow = per_call_seconds(partial(normalize_with_pyld, document))
        fast_total += fast
        slow_total += slow
        print(f"{label:<26}{fast * 1e6:>10.1f}µs{slow * 1e6:>10.0f}µs{slow / fast:>9.0f}x")
    print(f"{'all (sum)':<26}{fast_total * 1e6:>10.1f}µs{slow_total * 1e6:>10.0f}µs", end="")
    print(f"{slow_total / fast_total:>9.0f}x")


if __name__ == "__main__":
    main()
