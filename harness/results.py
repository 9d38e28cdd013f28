"""A run's result files, written and read here and nowhere else.

* ``results.jsonl``: one record per line, appended and flushed as each request
  completes. A crash or Ctrl-C therefore keeps every finished record. The reader skips a
  last line cut off mid-write (the one a kill can leave) and says so, rather than
  failing the file.
* ``server_metrics.jsonl``: one line per scrape of a server's Prometheus ``/metrics``
  (``ServerScrape``): when, where, every sample read, or the error that cost it.
* ``summary.json``: the run's figures, a ``RunSummary`` with its format version
  (``format``). A summary of a newer format than this version reads is refused; one
  written before the format was numbered reads as format 0.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from harness.errors import ConfigError
from harness.record import FORMAT_VERSION, RequestRecord

__all__ = [
    "SUMMARY_FORMAT",
    "Distribution",
    "ResultsWriter",
    "RunSummary",
    "ServerScrape",
    "read_all_records",
    "read_records",
    "read_scrapes",
    "read_summary",
    "write_summary",
]

log = logging.getLogger(__name__)

#: A line as ``RequestRecord.to_json`` writes it in this version ends with its version, and
#: is decoded by msgspec straight into the record (three times faster than ``json`` and
#: ``from_mapping``); any other line, or one msgspec refuses, takes the full reading.
_CURRENT_LINE_END = b',"v":%d}' % FORMAT_VERSION
_decode_current = msgspec.json.Decoder(RequestRecord).decode


class ResultsWriter:
    """Appends records to a JSONL file, flushing each line to the OS at once.

    Args:
        path: the file; its folder is created. An existing file is appended to.
        fsync: also ask the OS to put each line on disk (slower; for runs whose machine
            may lose power, not just the process).
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._fsync = fsync
        self.count = 0
        #: where this writer's first line starts: what was in the file before is older
        self.start_offset = self._file.tell()

    @property
    def offset(self) -> int:
        """Where the next line will start (every line so far is flushed)."""
        return self._file.tell()

    def write(self, record: RequestRecord) -> None:
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self.count += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_records(path: Path, *, offset: int = 0) -> Iterator[RequestRecord]:
    """The records of a ``results.jsonl``, in file order, read one line at a time.

    A last line that is not valid JSON (cut off by a kill mid-write) is skipped with a
    warning; a bad line anywhere else raises.

    Args:
        path: the file.
        offset: where to start reading (a writer's ``offset`` before the records wanted).

    Raises:
        ValueError: a line other than the last is not a record.
    """
    with path.open("rb") as file:
        file.seek(offset)
        number = 0
        for raw in file:
            number += 1
            line = raw.rstrip()
            if not line:
                continue
            record = None
            if line.endswith(_CURRENT_LINE_END):
                # a line msgspec refuses: the full reading accepts it, or says what is wrong
                with contextlib.suppress(msgspec.DecodeError):
                    record = _decode_current(line)
            if record is None:
                try:
                    data = json.loads(raw)
                except ValueError as exc:
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        log.warning("%s: skipped the last line, cut off mid-write", path)
                        return
                    raise ValueError(f"{path}:{number}: not a JSON record ({exc})") from exc
                record = RequestRecord.from_mapping(data)
            yield record


def read_all_records(path: Path, *, offset: int = 0) -> list[RequestRecord]:
    """Every record of a ``results.jsonl`` from ``offset`` on (see ``read_records``), as a
    list. The cyclic collector is paused meanwhile: records hold no cycles, and its passes
    over the growing list took a third of the time for 10,000 records."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(read_records(path, offset=offset))
    finally:
        if enabled:
            gc.enable()


class ServerScrape(msgspec.Struct, frozen=True, kw_only=True):
    """One scrape of a server's ``/metrics``: a line of ``server_metrics.jsonl``.

    Attributes:
        t_ns: the middle of the scrape, on the clock of the run's records.
        url: where it was read.
        elapsed_ns: how long the scrape took.
        samples: ``[name, labels, value]`` of every sample read (a histogram's
            ``_bucket``, ``_sum`` and ``_count`` samples each), empty for a failed scrape.
        error: why the scrape gave nothing (refused, timed out, not Prometheus text).
    """

    t_ns: int
    url: str
    elapsed_ns: int = 0
    samples: list[tuple[str, dict[str, str], float]] = msgspec.field(default_factory=list)
    error: str | None = None

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)


_SCRAPE_DECODER = msgspec.json.Decoder(ServerScrape)


def read_scrapes(path: Path) -> Iterator[ServerScrape]:
    """The scrapes of a ``server_metrics.jsonl``, in file order; a last line cut off
    mid-write is skipped, as in ``read_records``.

    Raises:
        ValueError: a line other than the last is not a scrape.
    """
    with path.open("rb") as file:
        for number, raw in enumerate(file, 1):
            if not raw.strip():
                continue
            try:
                yield _SCRAPE_DECODER.decode(raw)
            except msgspec.DecodeError as exc:
                if not raw.endswith(b"\n"):
                    log.warning("%s: skipped the last line, cut off mid-write", path)
                    return
                raise ValueError(f"{path}:{number}: not a scrape ({exc})") from exc


#: The format of ``summary.json`` this version writes; raised when a field changes
#: meaning or goes away (added fields keep it).
SUMMARY_FORMAT = 1


class Distribution(msgspec.Struct, frozen=True, kw_only=True):
    """Quantiles, mean and maximum of a figure over the run's requests (None when no
    request had it), and how many had it."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    mean: float | None = None
    max: float | None = None
    count: int = 0


Block = dict[str, Any]
#: Fields written even when None (the others are left out when the run has none).
_NULL_KEPT = frozenset({"dialect"})


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """``summary.json``: a run's figures over its measurement window.

    The blocks whose keys vary with the run (``variants``, ``schedule``, ``client``,
    ``disconnect``, ``goodput``, ``segments``, ``server``, ``client_vs_server``, ...) are
    described in docs/running.md and docs/metrics.md; the latencies are in seconds
    (``_s``), rates per second.
    """

    format: int = SUMMARY_FORMAT
    version: str
    requests: int
    ok: int
    errors: int
    errors_by_kind: dict[str, int]
    first_error_by_kind: dict[str, Any]
    error_rate: float
    abandoned: int
    cut: int
    ttft_s: Distribution
    itl_s: Distribution
    tpot_s: Distribution
    e2e_s: Distribution
    output_tokens_per_s: float
    requests_per_s: float
    window_s: float
    variants: Block
    no_terminator: int
    token_events_by_kind: dict[str, int]
    config: Block
    interrupted: bool = False
    dialect: str | None = None
    ttft_from_scheduled_s: Distribution | None = None
    clock: Block | None = None
    goodput: Block | None = None
    schedule: Block | None = None
    client: Block | None = None
    disconnect: Block | None = None
    gave_up: str | None = None
    lost_processes: list[str] | None = None
    measurement_error: str | None = None
    segments: list[Block] | None = None
    sweep: Block | None = None
    max_rate: Block | None = None
    locust: Block | None = None
    command: list[str] | None = None
    server: Block | None = None
    client_vs_server: Block | None = None
    prompt_cache: Block | None = None

    @classmethod
    def from_dict(cls, data: Block) -> RunSummary:
        """A summary from its JSON form.

        Raises:
            ConfigError: ``data`` is not a summary this version can read.
        """
        found = data.get("format", 0)
        if not isinstance(found, int) or found > SUMMARY_FORMAT:
            raise ConfigError(
                "summary",
                f"format {found!r} is newer than this sse-harness reads ({SUMMARY_FORMAT}); "
                "upgrade sse-harness",
            )
        try:
            return msgspec.convert({**data, "format": found}, cls)
        except msgspec.ValidationError as exc:
            raise ConfigError("summary", f"not a run summary: {exc}") from exc

    @classmethod
    def of(cls, figures: Block) -> RunSummary:
        """The summary of the figures a run gathered, each of them a field.

        Raises:
            ValueError: a key is no field of ``RunSummary`` (its figure would be lost).
            ConfigError: a value does not fit its field.
        """
        if unknown := sorted(set(figures) - set(cls.__struct_fields__)):
            raise ValueError(f"summary keys without a field in RunSummary: {unknown}")
        return cls.from_dict({"format": SUMMARY_FORMAT, **figures})

    def as_dict(self) -> Block:
        """The summary's JSON form (what ``summary.json`` holds), leaving out what a run
        of its kind does not have (the fields that are None)."""
        data = msgspec.to_builtins(self)
        return {k: v for k, v in data.items() if v is not None or k in _NULL_KEPT}


def write_summary(path: Path, summary: RunSummary | Block) -> None:
    """Write ``summary`` (or its JSON form, checked against its type) to ``path`` as
    indented JSON.

    Raises:
        ValueError: a key of ``summary`` is no field of ``RunSummary``: it would be lost.
        ConfigError: a value does not fit its field.
    """
    if not isinstance(summary, RunSummary):
        summary = RunSummary.of(summary)
    data = msgspec.json.encode(summary.as_dict())
    path.write_bytes(msgspec.json.format(data, indent=2) + b"\n")


def read_summary(path: Path | str) -> RunSummary:
    """The summary in ``path`` (a ``summary.json``, or the run folder holding one).

    Raises:
        ConfigError: the file is missing, not JSON, or not a summary this version reads.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("summary", f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError("summary", f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("summary", f"{path} holds no run summary")
    return RunSummary.from_dict(data)
