"""Where every benchmark writes its figures: `bench-results.json`, name -> value.

Each benchmark adds its own names (ratios included) and keeps what others
wrote, so one run of the whole suite leaves one file with every figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

RESULTS = Path("bench-results.json")


def write_results(figures: Mapping[str, float | int | str], path: Path = RESULTS) -> None:
    """Merge `figures` into `path`, replacing earlier values of the same names."""
    merged: dict[str, object] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            merged.update(loaded)
    merged.update(figures)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written to {path}")
