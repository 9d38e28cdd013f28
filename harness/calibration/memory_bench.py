"""``sse-harness bench memory``: does a long ``run`` keep its memory flat?

``sse-harness run`` is started as a process of its own (with the embedded mock, or any
``run`` options given) and its resident set size is read from ``/proc`` every second
while it runs. What matters is the growth from a settled point (by default 10 s in,
once every stream is open) to the end of the load: a client that keeps what it has
finished, or defers garbage for good, grows for as long as the load runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryTrace", "rss_mb", "trace_run_memory"]


@dataclass(frozen=True, slots=True)
class MemoryTrace:
    """RSS samples of one run: ``(seconds since start, MB)``, one a second."""

    samples: tuple[tuple[float, float], ...]
    settle_s: float
    exit_code: int

    def at(self, seconds: float) -> float | None:
        """The first sample at or after ``seconds``."""
        return next((mb for t, mb in self.samples if t >= seconds), None)

    @property
    def settled_mb(self) -> float | None:
        return self.at(self.settle_s)

    @property
    def peak_load_mb(self) -> float | None:
        """The highest sample after settling, up to the last one before the run's end
        (the end writes the reports: its peak is another matter, shown apart)."""
        load = [mb for t, mb in self.samples[:-LAST_SAMPLES_LEFT_OUT] if t >= self.settle_s]
        return max(load) if load else None

    @property
    def growth(self) -> float | None:
        """Peak under load over the settled RSS, minus one."""
        settled, peak = self.settled_mb, self.peak_load_mb
        if settled is None or peak is None:
            return None
        return peak / settled - 1


#: Samples at the end left out of the load's peak: reading back and writing reports.
LAST_SAMPLES_LEFT_OUT = 5


def rss_mb(pid: int) -> float | None:
    """The resident set size of process ``pid`` in MB, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def trace_run_memory(
    run_arguments: Sequence[str],
    out_dir: Path,
    *,
    settle_s: float = 10.0,
    every_s: float = 1.0,
    on_sample: Callable[[float, float], None] | None = None,
) -> MemoryTrace:
    """Run ``sse-harness run RUN_ARGUMENTS --out OUT_DIR --quiet`` and sample its RSS.

    The run must bound itself (``--duration`` and/or ``--requests``); this waits for it.
    """
    command = [sys.executable, "-m", "harness.cli", "run", *run_arguments]
    command += ["--out", str(out_dir), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    while process.poll() is None:
        mb = rss_mb(process.pid)
        if mb is not None:
            elapsed = time.monotonic() - start
            samples.append((elapsed, mb))
            if on_sample is not None:
                on_sample(elapsed, mb)
        time.sleep(every_s)
    if process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-2000:])
    return MemoryTrace(tuple(samples), settle_s, process.returncode)
