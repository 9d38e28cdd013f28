"""The configuration of a run: frozen, keyword-only, validated where it is made.

Dicts and command-line strings are parsed at the edge (``harness.cli``); everything
behind it receives a ``RunConfig``. Secrets live only in ``RequestSpec.api_key`` (not in
any repr) and ``redacted`` leaves them out of what reports and records show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.load.exchange import Abandon, StreamBounds
from harness.load.payloads import Message, RequestSpec
from harness.load.placement import Placement, allowed_cpus, place_processes
from harness.load.schedule import Bounds, ClosedLoop, OpenLoop, Trace
from harness.load.workload import WorkloadInfo
from harness.transports import DEFAULT_TRANSPORT, TRANSPORTS, Timeouts

__all__ = ["SLO_NAMES", "RunConfig", "parse_slo"]

Profile = ClosedLoop | OpenLoop | Trace
SLO_NAMES = ("ttft", "tpot", "e2e", "itl")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything one run (or one segment of a sweep) needs."""

    spec: RequestSpec
    profile: Profile
    bounds: Bounds
    dialect: str = "auto"
    pointer: str | None = None
    transport: str = DEFAULT_TRANSPORT
    http2: bool = False
    #: follow redirects within the request's origin (by default a 3xx is the answer)
    follow_redirects: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    stream_bounds: StreamBounds = field(default_factory=StreamBounds)
    disconnect_rate: float = 0.0
    disconnect_after: Abandon | None = None
    prompts: tuple[tuple[Message, ...], ...] = (({"role": "user", "content": "Hello"},),)
    #: the output length each prompt asks for, by the prompt's index (None, or an empty
    #: tuple: the request's ``max_tokens``)
    prompt_max_tokens: tuple[int | None, ...] = ()
    #: ``--turns dataset``: each prompt is a conversation's user turns, sent one by one
    #: (the answers sent back), turn t asking for ``turn_max_tokens[i][t]``
    turn_max_tokens: tuple[tuple[int | None, ...], ...] = ()
    #: where the prompts came from, for the summary (``config.workload``)
    workload: WorkloadInfo | None = None
    turns: int = 1
    slo: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    max_in_flight: int = 10_000
    #: client processes the load is spread over (each runs its own event loop)
    processes: int = 1
    #: the CPUs the client may use (empty: those this process may use when the run starts)
    cpus: tuple[int, ...] = ()
    #: the CPUs the embedded mock is pinned to: client processes go elsewhere where they can
    mock_cpus: tuple[int, ...] = ()
    #: sample the client's own loop lag and CPU share while it runs (``harness.load.selfwatch``)
    self_watch: bool = True
    #: times a rate-limited request (429, 503) is sent again after its Retry-After
    retry_429: int = 0
    #: the longest wait before such a retry, whatever Retry-After asks
    max_retry_wait_s: float = 30.0

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(
                "transport", f"must be one of {', '.join(TRANSPORTS)}, not {self.transport!r}"
            )
        if not 0.0 <= self.disconnect_rate <= 1.0:
            raise ConfigError(
                "disconnect-rate", f"is a share from 0 to 1, not {self.disconnect_rate}"
            )
        if self.disconnect_rate > 0 and self.disconnect_after is None:
            raise ConfigError(
                "disconnect-after", "give it with --disconnect-rate (tokens, or Ns for seconds)"
            )
        if self.turns < 1:
            raise ConfigError("turns", f"must be at least 1, not {self.turns}")
        if not self.prompts or any(not p for p in self.prompts):
            raise ConfigError("prompt", "give at least one non-empty prompt")
        if self.prompt_max_tokens and len(self.prompt_max_tokens) != len(self.prompts):
            raise ConfigError("max-tokens", "give one output length per prompt")
        if self.turn_max_tokens and not isinstance(self.profile, ClosedLoop):
            raise ConfigError("turns", "'dataset' replays conversations in a closed loop only")
        if self.turn_max_tokens and len(self.turn_max_tokens) != len(self.prompts):
            raise ConfigError("turns", "give the output lengths of every conversation")
        if self.processes < 1:
            raise ConfigError("processes", f"must be at least 1, not {self.processes}")
        if any(c < 0 for c in (*self.cpus, *self.mock_cpus)):
            raise ConfigError("processes", "CPU numbers are 0 or more")
        if self.retry_429 < 0:
            raise ConfigError("retry-429", f"must be 0 or more, not {self.retry_429}")
        if self.max_in_flight < 1:
            raise ConfigError("max-in-flight", f"must be at least 1, not {self.max_in_flight}")
        for name, value in self.slo.items():
            if name not in SLO_NAMES:
                raise ConfigError("slo", f"unknown target {name!r}; use {', '.join(SLO_NAMES)}")
            if not value > 0:
                raise ConfigError("slo", f"{name} must be a positive number of seconds")

    def max_tokens_for(self, index: int) -> int | None:
        """The output length the prompt of ``index`` asks for (None: the request's own)."""
        if not self.prompt_max_tokens:
            return None
        return self.prompt_max_tokens[index % len(self.prompt_max_tokens)]

    @property
    def connections(self) -> int:
        """The connection pool to size for this load."""
        if isinstance(self.profile, ClosedLoop):
            return -(-self.profile.concurrency // self.processes)
        return min(self.max_in_flight, 1024)

    def placement(self) -> Placement:
        """Where the client processes go (``harness.load.placement``)."""
        return place_processes(self.processes, self.cpus or allowed_cpus(), self.mock_cpus)

    def redacted(self) -> dict[str, Any]:
        """The configuration as JSON-able data, with every secret left out."""
        return {
            **self.spec.redacted(),
            "dialect": self.dialect,
            "transport": self.transport,
            "http2": self.http2,
            "follow_redirects": self.follow_redirects,
            "retry_429": self.retry_429,
            "profile": _describe(self.profile),
            "requests": self.bounds.requests,
            "duration_s": self.bounds.duration_s,
            "warmup_s": self.bounds.warmup_s,
            "timeouts": {
                "connect_s": self.timeouts.connect_s,
                "ttft_s": self.timeouts.ttft_s,
                "idle_s": self.timeouts.idle_s,
                "total_s": self.timeouts.total_s,
            },
            "max_stream_s": self.stream_bounds.max_stream_s,
            "max_events": self.stream_bounds.max_events,
            "disconnect_rate": self.disconnect_rate,
            "disconnect_after": _describe_abandon(self.disconnect_after),
            "turns": self.turns,
            "prompts": len(self.prompts),
            "slo": dict(self.slo),
            "seed": self.seed,
            "processes": self.processes,
            "placement": self.placement().as_dict(),
            "max_in_flight": self.max_in_flight,
            "self_watch": self.self_watch,
            **({"workload": self.workload.describe()} if self.workload else {}),
        }


def _describe(profile: Profile) -> dict[str, Any]:
    if isinstance(profile, ClosedLoop):
        return {
            "kind": "closed",
            "concurrency": profile.concurrency,
            "ramp_up_s": profile.ramp_up_s,
        }
    if isinstance(profile, OpenLoop):
        return {
            "kind": "open",
            "rate": profile.rate,
            "arrival": profile.arrival,
            "burstiness": profile.burstiness,
        }
    return {"kind": "trace", "entries": len(profile.entries)}


def _describe_abandon(abandon: Abandon | None) -> str | None:
    if abandon is None:
        return None
    if abandon.after_tokens is not None:
        return f"{abandon.after_tokens} tokens"
    return f"{abandon.after_s}s"


def parse_slo(items: Sequence[str]) -> dict[str, float]:
    """``["ttft=0.5", "tpot=0.05"]`` (seconds, or with ``ms``) to targets.

    Raises:
        ConfigError: an item is not ``name=seconds`` with a known name.
    """
    targets: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep or name not in SLO_NAMES:
                raise ConfigError(
                    "slo", f"expected one of {', '.join(SLO_NAMES)}=SECONDS, not {part!r}"
                )
            try:
                targets[name] = (
                    float(value[:-2]) / 1000 if value.endswith("ms") else float(value.rstrip("s"))
                )
            except ValueError as exc:
                raise ConfigError("slo", f"{name}: {value!r} is not a number of seconds") from exc
    return targets


def parse_abandon(text: str) -> Abandon:
    """``5`` (tokens) or ``2.5s`` (seconds) to an ``Abandon``.

    Raises:
        ConfigError: neither form.
    """
    try:
        if text.endswith("s"):
            seconds = float(text[:-1])
            if seconds <= 0:
                raise ValueError
            return Abandon(after_s=seconds)
        tokens = int(text)
        if tokens < 1:
            raise ValueError
        return Abandon(after_tokens=tokens)
    except ValueError as exc:
        raise ConfigError(
            "disconnect-after", f"expected tokens (5) or seconds (2.5s), not {text!r}"
        ) from exc
