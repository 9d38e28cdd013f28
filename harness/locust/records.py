"""Records of a locust test, from its users to one run folder.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.analysis.disconnects import summarize_disconnects
from harness.analysis.summary import Window, summarize
from harness.locust.live import LiveBoard
from harness.record import RequestRecord
from harness.results import ResultsWriter, read_all_records
from harness.run import RunResult, write_run_files

__all__ = [
    "DONE_MESSAGE",
    "FLUSH_MESSAGE",
    "RECORDS_MESSAGE",
    "ClockBase",
    "RecordCollector",
    "decode_batch",
    "encode_batch",
    "shifted",
]

#: Custom message types between the locust master and its workers.
RECORDS_MESSAGE = "sse_harness_records"
DONE_MESSAGE = "sse_harness_done"
FLUSH_MESSAGE = "sse_harness_flush"


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
        self._written = 0  # by a closed writer
        self.expected: set[str] = set()
        self.done: dict[str, dict[str, Any]] = {}
        self.late = 0

    @property
    def count(self) -> int:
        """Records written to ``results.jsonl``."""
        return self._writer.count if self._writer is not None else self._written

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
            self._written, self._writer = self._writer.count, None
        records = read_all_records(self.out_dir / "results.jsonl")
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
