"""``results.jsonl``: one record per line, appended and flushed as each request completes.

A crash or Ctrl-C therefore keeps every finished record. The reader skips a last line
cut off mid-write (the one a kill can leave) and says so, rather than failing the file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from harness.record import RequestRecord

__all__ = ["ResultsWriter", "read_records"]

log = logging.getLogger(__name__)


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
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except ValueError as exc:
                if not raw.endswith(b"\n"):  # only the last line can lack its newline
                    log.warning("%s: skipped the last line, cut off mid-write", path)
                    return
                raise ValueError(f"{path}:{number}: not a JSON record ({exc})") from exc
            yield RequestRecord.from_mapping(data)
