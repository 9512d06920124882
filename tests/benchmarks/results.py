"""Where benchmarks leave their figures: `bench-results.json` at the project's root.

Each benchmark adds its own names (`area.database.figure`) to what is there,
so one run of several benchmarks leaves one file with all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results.json"


def record_results(figures: dict[str, Any], path: Path = RESULTS) -> None:
    """Merge `figures` into the results file, rounding numbers for the eye."""
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(
        {
            name: round(value, 4) if isinstance(value, float) else value
            for name, value in figures.items()
        }
    )
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
