"""The schedule's books: every request a segment's schedule offered, sent or not sent.

An open loop (or a trace) offers requests at the times its profile says, whatever the
server and the client do. The runner launches each when it falls due; one it cannot launch
within the run's bounds is *not sent*, with why:

- ``in_flight_cap``: it fell due while ``--max-in-flight`` requests were already running,
  and no slot freed before the run ended;
- ``late``: it fell due inside the run's duration, but the client's loop got round to it
  only after the end (the client could not keep up with its own schedule);
- ``stopping``: the run was stopping (a user's Ctrl-C, or the target could not be reached)
  before it could be launched, though it fell due inside the run's duration.

A request launched late is still sent: its lateness (``t_sent - t_scheduled``) is measured
from the records, and its latencies are measured from when it was due. In a closed loop
every request a user asks to start is sent, so ``offered == sent``.

Pure bookkeeping: the runner calls ``sent`` and ``not_sent``; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.record import RequestRecord

# numpy is imported by the functions that use it, after the load: a run imports this
# module before its first request
__all__ = ["NOT_SENT_REASONS", "ScheduleLedger", "send_lateness_ns", "schedule_summary"]

NOT_SENT_REASONS = ("in_flight_cap", "late", "stopping")
#: At most this many runs of consecutive unsent requests are listed one by one.
MAX_UNSENT_RUNS = 100


@dataclass(slots=True)
class _UnsentRun:
    """Consecutive requests of the schedule not sent, for one reason."""

    why: str
    first: int  # the request's number in the schedule
    last: int
    first_due_ns: int  # from the segment's start
    last_due_ns: int
    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "why": self.why,
            "first": self.first,
            "last": self.last,
            "count": self.count,
            "first_due_s": self.first_due_ns / 1e9,
            "last_due_s": self.last_due_ns / 1e9,
        }


@dataclass(slots=True)
class ScheduleLedger:
    """How many requests a segment's schedule offered, and what became of each.

    Requests are numbered by their place in the whole schedule, so the books of the
    shards of one run (``--processes``) add up to the books of one process.
    """

    offered: int = 0
    sent_count: int = 0
    not_sent_by: dict[str, int] = field(default_factory=dict)
    #: runs of consecutive requests not sent (at most ``MAX_UNSENT_RUNS``)
    unsent: list[_UnsentRun] = field(default_factory=list)

    def sent(self) -> None:
        """A request was launched."""
        self.offered += 1
        self.sent_count += 1

    def not_sent(self, number: int, due_ns: int, why: str) -> None:
        """Request ``number``, due ``due_ns`` after the start, was not launched."""
        if why not in NOT_SENT_REASONS:
            raise ValueError(f"unknown reason {why!r}")
        self.offered += 1
        self.not_sent_by[why] = self.not_sent_by.get(why, 0) + 1
        last = self.unsent[-1] if self.unsent else None
        if last is not None and last.why == why and number > last.last:
            last.last, last.last_due_ns = number, due_ns
            last.count += 1
        elif len(self.unsent) < MAX_UNSENT_RUNS:
            self.unsent.append(_UnsentRun(why, number, number, due_ns, due_ns))

    @property
    def not_sent_count(self) -> int:
        return sum(self.not_sent_by.values())

    def add(self, other: ScheduleLedger) -> None:
        """Take in the books of another shard or segment."""
        self.offered += other.offered
        self.sent_count += other.sent_count
        for why, count in other.not_sent_by.items():
            self.not_sent_by[why] = self.not_sent_by.get(why, 0) + count
        room = MAX_UNSENT_RUNS - len(self.unsent)
        self.unsent.extend(other.unsent[: max(room, 0)])

    def as_dict(self) -> dict[str, Any]:
        """The books as plain data (to cross a process boundary, or for the summary)."""
        return {
            "offered": self.offered,
            "sent": self.sent_count,
            "not_sent": self.not_sent_count,
            "not_sent_by": dict(sorted(self.not_sent_by.items())),
            "unsent": [run.as_dict() for run in sorted(self.unsent, key=lambda r: r.first)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduleLedger:
        runs = [
            _UnsentRun(
                why=run["why"],
                first=run["first"],
                last=run["last"],
                first_due_ns=round(run["first_due_s"] * 1e9),
                last_due_ns=round(run["last_due_s"] * 1e9),
                count=run["count"],
            )
            for run in data.get("unsent", ())
        ]
        return cls(
            offered=data["offered"],
            sent_count=data["sent"],
            not_sent_by=dict(data.get("not_sent_by", {})),
            unsent=runs,
        )


def send_lateness_ns(records: Iterable[RequestRecord]) -> list[int]:
    """How late each scheduled request was sent: its first attempt's ``t_sent`` minus
    ``t_scheduled`` (never below 0). Closed-loop requests have no schedule to be late for."""
    late = []
    for record in records:
        if record.t_scheduled_ns is None or not record.t_sent_ns:
            continue
        sent_ns = record.t_sent_ns
        if record.attempts:  # retried: the first attempt is the one the schedule launched
            sent_ns = int(record.attempts[0].get("t_sent_ns") or sent_ns)
        late.append(max(sent_ns - record.t_scheduled_ns, 0))
    return late


def schedule_summary(ledger: ScheduleLedger, lateness_ns: Sequence[int]) -> dict[str, Any]:
    """``summary.json``'s ``schedule``: the books, and the send lateness in seconds
    (``p50``, ``p99``, ``max``; None where no request had a schedule)."""
    import numpy as np

    block = ledger.as_dict()
    if lateness_ns:
        values = np.asarray(lateness_ns, dtype=np.float64) / 1e9
        block["send_lateness_s"] = {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
        }
    else:
        block["send_lateness_s"] = None
    return block
