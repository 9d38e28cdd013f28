"""When requests start: closed loop, open loop (constant, Poisson, gamma), traces, sweeps.

Pure scheduling: offsets in nanoseconds from the start of a segment, no clock and no I/O.
The runner reads the clock and waits until each absolute start time, so lateness never
accumulates, and it records the scheduled time beside the actual one (an open-loop
request that starts late still has its latency measured from when it was due: no
coordinated omission).

Every profile is bounded: the runner stops at ``Bounds.requests`` and/or
``Bounds.duration_s``, whichever comes first, and a profile given neither is refused.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "ARRIVALS",
    "Bounds",
    "ClosedLoop",
    "OpenLoop",
    "Trace",
    "TraceEntry",
    "parse_sweep",
]

ARRIVALS = ("constant", "poisson", "gamma")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """When a segment stops: after ``requests`` started and/or ``duration_s`` elapsed."""

    requests: int | None = None
    duration_s: float | None = None
    warmup_s: float = 0.0
    #: how long in-flight requests may finish after the duration ends
    grace_s: float = 30.0

    def __post_init__(self) -> None:
        if self.requests is None and self.duration_s is None:
            raise ConfigError("requests", "give --requests and/or --duration: every run is bounded")
        if self.requests is not None and self.requests < 1:
            raise ConfigError("requests", f"must be at least 1, not {self.requests}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError("duration", f"must be positive, not {self.duration_s}")
        if self.warmup_s < 0:
            raise ConfigError("warmup", f"cannot be negative, not {self.warmup_s}")
        if self.grace_s < 0:
            raise ConfigError("grace", f"cannot be negative, not {self.grace_s}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedLoop:
    """``concurrency`` users, each sending its next request when the last one ends.

    Users start evenly over ``ramp_up_s`` so that the first wave does not measure a
    connect storm; 0 starts them all at once.
    """

    concurrency: int
    ramp_up_s: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("concurrency", f"must be at least 1, not {self.concurrency}")
        if self.ramp_up_s < 0:
            raise ConfigError("ramp-up", f"cannot be negative, not {self.ramp_up_s}")

    def user_start_offsets_ns(self) -> list[int]:
        """When each user starts, evenly spread over the ramp-up."""
        step = self.ramp_up_s * 1e9 / self.concurrency
        return [int(i * step) for i in range(self.concurrency)]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenLoop:
    """Requests arrive at ``rate`` per second whatever the server does.

    ``arrival``: ``constant`` (evenly spaced), ``poisson`` (exponential gaps) or
    ``gamma`` (gamma gaps of shape ``burstiness``: below 1 burstier than Poisson, above 1
    more regular; 1 is Poisson). Seeded, so a run's schedule can be repeated.
    """

    rate: float
    arrival: str = "constant"
    burstiness: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.rate > 0 or math.isinf(self.rate):
            raise ConfigError("rate", f"must be a positive number of requests/s, not {self.rate}")
        if self.arrival not in ARRIVALS:
            raise ConfigError(
                "arrival", f"must be one of {', '.join(ARRIVALS)}, not {self.arrival!r}"
            )
        if not self.burstiness > 0:
            raise ConfigError("burstiness", f"must be positive, not {self.burstiness}")

    def offsets_ns(self) -> Iterator[int]:
        """Start offsets of successive requests (endless: the runner bounds them)."""
        rng = random.Random(self.seed)
        mean_s = 1.0 / self.rate
        shape = self.burstiness if self.arrival == "gamma" else 1.0
        if self.arrival == "constant":  # multiplied, not summed: no drift over a long run
            for number in itertools.count():
                yield round(number * 1e9 / self.rate)
        else:
            t = 0.0
            while True:
                yield int(t * 1e9)
                t += rng.gammavariate(shape, mean_s / shape)  # shape 1 is the exponential


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One request of a trace: when, and what to send."""

    offset_s: float
    prompt: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """Replay requests at the offsets a JSONL trace gives."""

    entries: tuple[TraceEntry, ...]

    @classmethod
    def from_lines(cls, lines: Sequence[str], source: str = "trace") -> Trace:
        """Parse JSONL: ``{"offset_s", "prompt" | "prompt_tokens", "output_tokens"}``.

        ``timestamp`` (seconds) and ``offset_ms`` are accepted for ``offset_s``, and
        ``input_length`` / ``output_length`` for the token counts, as other tools write.

        Raises:
            ConfigError: a line is not such an object (the field names the line).
        """
        entries = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            try:
                data: dict[str, Any] = json.loads(line)
                if not isinstance(data, dict):
                    raise TypeError("not an object")
                offset = data.get("offset_s", data.get("timestamp"))
                if offset is None and "offset_ms" in data:
                    offset = data["offset_ms"] / 1000
                entry = TraceEntry(
                    offset_s=float(offset if offset is not None else 0.0),
                    prompt=data.get("prompt"),
                    prompt_tokens=_optional_int(
                        data.get("prompt_tokens", data.get("input_length"))
                    ),
                    output_tokens=_optional_int(
                        data.get("output_tokens", data.get("output_length"))
                    ),
                )
            except (ValueError, TypeError) as exc:
                raise ConfigError(where, f"not a trace entry ({exc})") from exc
            if entry.offset_s < 0:
                raise ConfigError(where, "offset cannot be negative")
            entries.append(entry)
        if not entries:
            raise ConfigError(source, "the trace has no entries")
        return cls(tuple(sorted(entries, key=lambda e: e.offset_s)))

    def offsets_ns(self) -> Iterator[int]:
        first = self.entries[0].offset_s
        for entry in self.entries:
            yield int((entry.offset_s - first) * 1e9)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``concurrency=1,8,32`` or ``rate=1,2.5,5`` to (name, levels).

    Raises:
        ConfigError: not of that form, or a level is not a positive number.
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in ("concurrency", "rate", "disconnect-rate"):
        raise ConfigError(
            "sweep", f"expected concurrency=..., rate=... or disconnect-rate=..., not {text!r}"
        )
    try:
        levels = [float(v) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError("sweep", f"levels must be numbers: {values!r}") from exc
    if not levels:
        raise ConfigError("sweep", "give at least one level")
    if name == "concurrency" and any(v < 1 or v != int(v) for v in levels):
        raise ConfigError("sweep", "concurrency levels must be whole numbers of at least 1")
    if name == "rate" and any(v <= 0 for v in levels):
        raise ConfigError("sweep", "rate levels must be positive")
    if name == "disconnect-rate" and any(not 0 <= v <= 1 for v in levels):
        raise ConfigError("sweep", "disconnect rates are shares from 0 to 1")
    return name, levels
