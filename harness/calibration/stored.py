"""This machine's calibration on disk, and the line a run's report takes from it.

Kept apart from ``calibrate`` (which brings the mock and the load) so that a run reads
it before its first request at the cost of one small file.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["LAG_BOUND_MS", "calibration_path", "load_calibration", "measurement_error"]

#: The arrival lag (p99, milliseconds) within which a level counts as measured exactly.
LAG_BOUND_MS = 2.0


def calibration_path() -> Path:
    """Where this machine's calibration is kept (``$XDG_CACHE_HOME/sse-harness/``)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "sse-harness" / f"calibration-{platform.node() or 'machine'}.json"


def load_calibration(path: Path | None = None) -> dict[str, Any] | None:
    try:
        return json.loads((path or calibration_path()).read_text())
    except (OSError, ValueError):
        return None


def measurement_error(transport: str, concurrency: int | None) -> str | None:
    """A line for a run report: this machine's calibrated arrival lag for the run's load."""
    data = load_calibration()
    if not data:
        return None
    levels = [lv for lv in data.get("levels", []) if lv["transport"] == transport]
    if not levels:
        return None
    best = data.get("best", {}).get(transport)
    near = min(levels, key=lambda lv: abs(lv["concurrency"] - (concurrency or 1)))
    p99 = near.get("lag_p99_ms")
    return (
        f"{transport} transport: p99 arrival lag {p99:.2f} ms at {near['concurrency']} streams"
        f" (calibrated; within {data.get('bound_ms', LAG_BOUND_MS):g} ms up to {best} streams)"
        if p99 is not None
        else None
    )
