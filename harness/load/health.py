"""Whether the client itself was the bottleneck of a run: its samples and their verdict.

``harness.load.selfwatch`` samples each client process while a segment runs; this module holds
what it saw (``ClientSamples``) and judges it, with the send lateness and the merged reads
the records show, against bounds that match ``sse-harness calibrate``'s: a client is
*bound* when its own delays could have moved the figures by more than the calibrated 2 ms.

- **loop lag** p99 above ``LOOP_LAG_P99_MS`` while the process was busy: a read that
  arrived waited that long for the loop before it was stamped. A wake-up of an idle
  process comes late too on a machine that parks idle cores (a virtual machine's vCPU
  can take milliseconds to wake), but that lateness is the machine's, not the client's
  load: no remedy of the client's moves it, and the arrival stamps of an idle client are
  as late as calibrate's at one stream. Only wake-ups after an interval in which the
  process used at least ``BUSY_PERCENT`` of a core are judged.
- **CPU** p50 above ``CPU_PERCENT`` of one core: the process had no time to spare.
- **send lateness** p99 above ``SEND_LATENESS_P99_MS``: requests went out later than the
  schedule said (an open loop only).

Pure: no clock, no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# numpy is imported by the functions that use it, after the load: a run imports this
# module before its first request
if TYPE_CHECKING:
    import numpy as np

__all__ = ["ClientSamples", "client_verdict", "remedy"]

LOOP_LAG_P99_MS = 2.0
CPU_PERCENT = 90.0
SEND_LATENESS_P99_MS = 5.0
#: A wake-up is judged for loop lag when the process used this much of a core before it.
BUSY_PERCENT = 50


@dataclass(slots=True)
class ClientSamples:
    """What the client process(es) saw of themselves during a segment.

    Attributes:
        lags_ns: every wake-up's lateness, in nanoseconds.
        busy: the share of a core (0 to 100) the process used in the interval before
            each wake-up, one per ``lags_ns``.
        seconds: per whole second of each process's watch, ``(start_ns, lag_max_ns,
            cpu_percent, process)``, ``start_ns`` on the run's clock.
        process: which client process took them (``--processes``), 0 for the only one.
    """

    lags_ns: array[int] = field(default_factory=lambda: array("q"))
    busy: array[int] = field(default_factory=lambda: array("b"))
    seconds: list[tuple[int, int, float, int]] = field(default_factory=list)
    process: int = 0

    def extend(self, other: ClientSamples) -> None:
        """Take in another process's (or segment's) samples."""
        self.lags_ns.extend(other.lags_ns)
        self.busy.extend(other.busy)
        self.seconds.extend(other.seconds)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, to cross a process boundary."""
        return {
            "lags_ns": self.lags_ns.tobytes(),
            "busy": self.busy.tobytes(),
            "seconds": self.seconds,
            "process": self.process,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientSamples:
        lags, busy = array("q"), array("b")
        lags.frombytes(data["lags_ns"])
        busy.frombytes(data["busy"])
        seconds = [(int(a), int(b), float(c), int(d)) for a, b, c, d in data["seconds"]]
        return cls(lags, busy, seconds, data["process"])


def _percentile_ms(values_ns: Sequence[int] | np.ndarray, q: float) -> float | None:
    import numpy as np

    if len(values_ns) == 0:
        return None
    return round(float(np.percentile(np.asarray(values_ns, dtype=np.float64), q)) / 1e6, 3)


def client_verdict(
    samples: ClientSamples | None,
    *,
    send_lateness_ns: Sequence[int] = (),
    merged_reads_share: float | None = None,
    transport: str = "",
    http2: bool = False,
    processes: int = 1,
    cores: int = 1,
    kernel_stamps: bool = False,
) -> dict[str, Any]:
    """``summary.json``'s ``client``: whether the client was bound, why, and what to do.

    Args:
        samples: what the self-watch saw; None when it was off (then nothing is judged
            but the send lateness).
        send_lateness_ns: how late each scheduled request was sent.
        merged_reads_share: the share of reads that carried more than one token event.
        transport: the run's transport, for the remedy.
        http2: whether it spoke HTTP/2, for the remedy.
        processes: the run's client processes, for the remedy.
        cores: this machine's cores, for the remedy.
        kernel_stamps: whether the kernel stamps arrivals here (Linux), for the remedy.
    """
    import numpy as np

    reasons: list[str] = []
    lagging = False  # the loop ran late while busy: stamps taken in user space moved
    block: dict[str, Any] = {"watched": samples is not None}
    if samples is not None:
        lags = np.frombuffer(samples.lags_ns, dtype=np.int64) if samples.lags_ns else np.empty(0)
        busy = np.frombuffer(samples.busy, dtype=np.int8) if samples.busy else np.empty(0)
        judged = lags[busy >= BUSY_PERCENT] if len(busy) == len(lags) else lags
        cpu = [second[2] for second in samples.seconds]
        block["loop_lag_ms"] = {
            "p99": _percentile_ms(judged, 99),
            "max": _percentile_ms(judged, 100),
            "p99_all": _percentile_ms(lags, 99),
            "max_all": _percentile_ms(lags, 100),
            "busy_samples": len(judged),
            "samples": len(lags),
        }
        block["cpu_percent"] = {
            "p50": round(float(np.median(cpu)), 1) if cpu else None,
            "max": round(max(cpu), 1) if cpu else None,
        }
        lag_p99 = block["loop_lag_ms"]["p99"]
        lagging = lag_p99 is not None and lag_p99 > LOOP_LAG_P99_MS
        if lagging:
            reasons.append(
                f"event-loop lag p99 {lag_p99:.3g} ms while busy (bound {LOOP_LAG_P99_MS:g} ms)"
            )
        cpu_p50 = block["cpu_percent"]["p50"]
        if cpu_p50 is not None and cpu_p50 > CPU_PERCENT:
            reasons.append(f"CPU {cpu_p50:.0f}% of a core at p50 (bound {CPU_PERCENT:g}%)")
    late_p99 = _percentile_ms(send_lateness_ns, 99)
    block["send_lateness_ms"] = {"p99": late_p99, "max": _percentile_ms(send_lateness_ns, 100)}
    if late_p99 is not None and late_p99 > SEND_LATENESS_P99_MS:
        reasons.append(f"send lateness p99 {late_p99:.3g} ms (bound {SEND_LATENESS_P99_MS:g} ms)")
    block["merged_reads_share"] = merged_reads_share
    block["bound"] = bool(reasons)
    block["reasons"] = reasons
    block["remedy"] = (
        remedy(
            transport,
            processes,
            cores,
            http2=http2,
            lagging=lagging,
            kernel_stamps=kernel_stamps,
        )
        if reasons
        else None
    )
    return block


def remedy(
    transport: str,
    processes: int,
    cores: int,
    *,
    http2: bool = False,
    lagging: bool = False,
    kernel_stamps: bool = False,
) -> str:
    """What to do about a bound client, the first that applies: a faster transport, more
    processes on spare cores, or, for a loop that ran late (``lagging``) where the kernel
    stamps arrivals (``kernel_stamps``), the kernel transport, whose stamps a late loop
    does not move."""
    if transport == "httpx" and http2:  # httpx's own transport: 6-10x aiohttp's CPU per event
        return (
            "use a faster transport: drop --http2 and use --transport aiohttp (about 1.6x "
            "the leanest reader's CPU per event); see the README's transports table"
        )
    if processes < cores:
        return f"spread the load over more client processes: --processes {cores}"
    if lagging and kernel_stamps and transport != "kernel":
        return (
            "stamp the arrivals in the kernel: --transport kernel (its stamps stay exact "
            "however late the loop runs; it sends no faster: for the rate, send fewer "
            "streams or run the client on a bigger machine)"
        )
    return "send fewer streams from this machine, or run the client on a bigger one"
