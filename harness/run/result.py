"""What a run gathered: its records, summary, segments and the client's view of itself."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.health import ClientSamples
from harness.load.ledger import ScheduleLedger
from harness.record import RequestRecord
from harness.results import RunSummary

__all__ = ["RunResult", "default_out_dir"]


@dataclass(slots=True)
class RunResult:
    out_dir: Path
    summary: dict[str, Any]
    segments: list[dict[str, Any]] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    interrupted: bool = False
    #: why the run stopped before its bounds by itself (the target cannot be reached)
    gave_up: str | None = None
    #: client processes that ended without reporting back (``--processes``)
    lost_processes: list[str] = field(default_factory=list)
    #: what became of every request the schedule offered, over all segments
    ledger: ScheduleLedger = field(default_factory=ScheduleLedger)
    #: what the client process(es) saw of themselves (None when the self-watch was off)
    client: ClientSamples | None = None
    #: ``summary`` as its type (None for results gathered by another entry point)
    run_summary: RunSummary | None = None


def default_out_dir(root: Path = Path("reports")) -> Path:
    """``reports/<timestamp>-<short id>/``."""
    return root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
