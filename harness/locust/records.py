"""Records of a locust test, from its users to one run folder, and its live figures.

Every locust user hands each finished ``RequestRecord`` to the node it runs on. A worker
ships them to the master in batches (locust custom messages) and, when its users have
stopped, says it is done; the master (or a single-process locust) appends them to
``results.jsonl`` as they arrive and, once every worker is done, writes ``summary.json``,
``requests.csv``, ``timeseries.csv`` and ``report.md`` with ``sse-harness run``'s own
code, so the percentiles come from the raw records, not from locust's histogram.

Times are ``perf_counter_ns`` values, which every process of one machine shares. A worker
on another machine (another boot) has another monotonic clock; its records are moved onto
the master's through each machine's wall clock, to within the machines' clock agreement.

Nothing here imports locust or gevent: the locust plugin calls in, and the rest of the
harness (and its tests) can use it in any process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.analysis.disconnects import summarize_disconnects
from harness.analysis.metrics import Window, summarize
from harness.record import Outcome, RequestRecord
from harness.results import ResultsWriter, read_records
from harness.run import RunResult, write_run_files
from harness.transports.base import Clock

__all__ = [
    "DONE_MESSAGE",
    "FLUSH_MESSAGE",
    "RECORDS_MESSAGE",
    "ClockBase",
    "LiveBoard",
    "RecordCollector",
    "decode_batch",
    "encode_batch",
    "shifted",
]

#: Custom message types between the locust master and its workers.
RECORDS_MESSAGE = "sse_harness_records"
DONE_MESSAGE = "sse_harness_done"
FLUSH_MESSAGE = "sse_harness_flush"
#: Recent records and token counts older than this leave the live figures.
LIVE_WINDOW_S = 10.0
#: Points of the live history kept for the chart (one per sample).
HISTORY_POINTS = 1800


@dataclass(frozen=True, slots=True)
class ClockBase:
    """Which monotonic clock a process reads, and how far the wall clock is ahead of it."""

    machine: str
    offset_ns: int

    @classmethod
    def here(cls) -> ClockBase:
        """This process's clock: the kernel's boot id names the monotonic clock."""
        machine = socket.gethostname()
        with contextlib.suppress(OSError):
            machine = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return cls(machine, time.time_ns() - time.perf_counter_ns())


def shifted(record: RequestRecord, by_ns: int) -> RequestRecord:
    """``record`` with every timestamp (``*_ns`` field, or list of them) moved by ``by_ns``."""
    for f in dataclasses.fields(record):
        if not f.name.endswith("_ns"):
            continue
        value = getattr(record, f.name)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(record, f.name, value + by_ns)
        elif isinstance(value, list):
            setattr(record, f.name, [v + by_ns for v in value])
    return record


def encode_batch(records: Iterable[RequestRecord], base: ClockBase, node: str) -> dict[str, Any]:
    """A batch of records as a locust message's data (plain, msgpack-able values)."""
    return {
        "node": node,
        "machine": base.machine,
        "offset_ns": base.offset_ns,
        "records": [r.to_json() for r in records],
    }


def decode_batch(data: Mapping[str, Any], here: ClockBase) -> list[RequestRecord]:
    """The records of a batch, on this process's clock.

    Raises:
        ValueError: a record is not in a known format.
    """
    records = [RequestRecord.from_mapping(json.loads(line)) for line in data["records"]]
    if data.get("machine") != here.machine:  # another clock: move through the wall clocks
        by_ns = int(data["offset_ns"]) - here.offset_ns
        records = [shifted(r, by_ns) for r in records]
    return records


class LiveBoard:
    """Live figures for the web UI: recent exact percentiles and tokens/s.

    ``add`` takes finished records; ``add_tokens`` counts tokens as they arrive (a
    stream's tokens show before it ends); ``sample`` is called about once a second.
    """

    def __init__(self, *, window_s: float = LIVE_WINDOW_S, clock: Clock = time.perf_counter_ns):
        self._window_ns = int(window_s * 1e9)
        self._clock = clock
        self.started_ns = clock()
        self.requests = 0
        self.errors = 0
        self.tokens = 0
        self._ttft_s = array("d")  # every ok request's TTFT: 8 bytes each
        self._recent: deque[tuple[int, RequestRecord]] = deque()
        self._token_samples: deque[tuple[int, int]] = deque([(self.started_ns, 0)])
        self.history: deque[dict[str, float | None]] = deque(maxlen=HISTORY_POINTS)

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.outcome is Outcome.ERROR:
            self.errors += 1
        ttft_s = _counted_ttft_s(record)
        if ttft_s is not None:
            self._ttft_s.append(ttft_s)
        self._recent.append((record.t_end_ns or self._clock(), record))

    def add_tokens(self, count: int) -> None:
        self.tokens += count

    def sample(self) -> None:
        """Note the token count now and add a point to the history."""
        now = self._clock()
        self._token_samples.append((now, self.tokens))
        self._trim(now)
        recent_ttft = [t for _, r in self._recent if (t := _counted_ttft_s(r)) is not None]
        self.history.append(
            {
                "t_s": round((now - self.started_ns) / 1e9, 1),
                "tokens_per_s": self.tokens_per_s(),
                "ttft_p50_ms": _percentiles(recent_ttft)[0],
            }
        )

    def tokens_per_s(self) -> float:
        (t0, n0), (t1, n1) = self._token_samples[0], self._token_samples[-1]
        return (n1 - n0) / ((t1 - t0) / 1e9) if t1 > t0 else 0.0

    def rows(self) -> list[dict[str, str]]:
        """The web UI tab's table: each figure over the last seconds and the whole test."""
        self._trim(self._clock())
        recent = self._recent_figures()
        run = _percentiles(self._ttft_s)
        elapsed_s = max((self._clock() - self.started_ns) / 1e9, 1e-9)
        window = f"{self._window_ns / 1e9:g}"
        rows = [
            ("output tokens/s", _fmt(self.tokens_per_s()), _fmt(self.tokens / elapsed_s)),
            ("TTFT p50 (ms)", _fmt(recent["ttft"][0]), _fmt(run[0])),
            ("TTFT p95 (ms)", _fmt(recent["ttft"][1]), _fmt(run[1])),
            ("TTFT p99 (ms)", _fmt(recent["ttft"][2]), _fmt(run[2])),
            ("ITL p50 (ms)", _fmt(recent["itl"][0]), "-"),
            ("ITL p99 (ms)", _fmt(recent["itl"][2]), "-"),
            ("E2E p50 (ms)", _fmt(recent["e2e"][0]), "-"),
            ("E2E p99 (ms)", _fmt(recent["e2e"][2]), "-"),
            ("requests ended", str(recent["requests"]), str(self.requests)),
            ("errors", str(recent["errors"]), str(self.errors)),
        ]
        return [
            {"name": name, "now": now, "run": whole, "window": window} for name, now, whole in rows
        ]

    def _trim(self, now_ns: int) -> None:
        horizon = now_ns - self._window_ns
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        while len(self._token_samples) > 1 and self._token_samples[1][0] <= horizon:
            self._token_samples.popleft()

    def _recent_figures(self) -> dict[str, Any]:
        ttft: list[float] = []
        e2e: list[float] = []
        itl: list[float] = []
        errors = 0
        for _, r in self._recent:
            if r.outcome is Outcome.ERROR:
                errors += 1
            ttft_s = _counted_ttft_s(r)
            if ttft_s is not None:
                ttft.append(ttft_s)
                itl.extend(gap / 1e9 for gap in r.itl_ns())
            if r.outcome is Outcome.OK and r.e2e_s is not None:
                e2e.append(r.e2e_s)
        return {
            "ttft": _percentiles(ttft),
            "itl": _percentiles(itl),
            "e2e": _percentiles(e2e),
            "requests": len(self._recent),
            "errors": errors,
        }


def _counted_ttft_s(record: RequestRecord) -> float | None:
    """A record's TTFT when its TTFT and ITL count (``ok`` or ``cut``, as in the report)."""
    return record.ttft_s if record.outcome in (Outcome.OK, Outcome.CUT) else None


def _percentiles(values_s: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and p99 in milliseconds (None without values)."""
    if not len(values_s):
        return None, None, None
    p50, p95, p99 = np.percentile(np.asarray(values_s) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


class RecordCollector:
    """The run folder of one locust test, filled as records arrive.

    Args:
        out_dir: the run folder; ``results.jsonl`` is appended to as records arrive.
        board: live figures to feed, if any.
    """

    def __init__(self, out_dir: Path, *, board: LiveBoard | None = None) -> None:
        self.out_dir = out_dir
        self.board = board
        self._writer: ResultsWriter | None = ResultsWriter(out_dir / "results.jsonl")
        self.expected: set[str] = set()
        self.done: dict[str, dict[str, Any]] = {}
        self.late = 0

    @property
    def count(self) -> int:
        return self._writer.count if self._writer is not None else 0

    @property
    def finished(self) -> bool:
        return self._writer is None

    def add(self, records: Iterable[RequestRecord], node: str | None = None) -> None:
        """Append records (from ``node``, a worker, if given); after ``finish`` they are
        counted as late and dropped."""
        if node is not None:
            self.expected.add(node)
        for record in records:
            if self._writer is None:
                self.late += 1
                continue
            self._writer.write(record)
            if self.board is not None:
                self.board.add(record)

    def node_done(self, node: str, stats: Mapping[str, Any]) -> None:
        """``node`` has sent all its records; ``stats`` holds its CPU seconds and events."""
        self.expected.add(node)
        self.done[node] = dict(stats)

    def waiting_for(self) -> set[str]:
        """The nodes whose records may still come."""
        return self.expected - set(self.done)

    def finish(self, config: Mapping[str, Any], locust: Mapping[str, Any]) -> RunResult:
        """Close ``results.jsonl`` and write the run's other files from its records.

        Args:
            config: the test's settings (no secrets), for ``summary.json``'s ``config``.
            locust: locust's own view (users, workers, its request counts), kept beside.
        """
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        records = list(read_records(self.out_dir / "results.jsonl"))
        summary = summarize(records, window=Window.around(records))
        summary["disconnect"] = summarize_disconnects(records, {})
        summary["dialect"] = ", ".join(sorted({r.dialect for r in records if r.dialect})) or None
        summary["config"] = dict(config)
        summary["interrupted"] = False
        summary["version"] = __version__
        cpu_s = sum(float(s.get("cpu_s", 0.0)) for s in self.done.values())
        events = sum(r.events for r in records)
        summary["locust"] = {
            **locust,
            "nodes": sorted(self.done),
            "missing_nodes": sorted(self.waiting_for()),
            "client_cpu_s": cpu_s,
            "client_cpu_us_per_event": cpu_s * 1e6 / events if events else None,
            "late_records": self.late,
        }
        result = RunResult(out_dir=self.out_dir, summary=summary, records=records)
        write_run_files(result)
        return result
