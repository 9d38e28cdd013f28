"""The mock server's configuration: frozen, validated, parsed from dicts and TOML at the edge.

Three dataclasses, each validated in ``__post_init__`` (a bad value raises ``ConfigError``
naming the field, as a TOML file or the command line spells it)::

    MockConfig                 where to listen, seeds, limits, CORS, ground-truth size
    ├── timing: TimingProfile  TTFT, ITL, their distribution, output length, load model
    └── faults: FaultRates     the probability (0..1) of each fault kind per request

A TOML file holds the ``MockConfig`` fields at the top level and the other two as the
tables ``[timing]`` and ``[faults]``::

    port = 8000
    seed = 7
    [timing]
    ttft_ms = 150
    itl_ms = 20
    distribution = "lognormal"
    spread = 0.3
    [faults]
    http_503 = 0.01
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "DISTRIBUTIONS",
    "FAULT_KINDS",
    "MAX_TIME_MS",
    "FaultRates",
    "MockConfig",
    "TimingProfile",
]

#: How TTFT and each ITL gap are drawn around their base value (see ``TimingProfile``).
DISTRIBUTIONS = ("fixed", "uniform", "normal", "lognormal")

#: The fault kinds, as ``--fault-rate KIND=P`` and the ``[faults]`` table spell them.
FAULT_KINDS = (
    "http_429",
    "http_500",
    "http_503",
    "disconnect",
    "stall",
    "malformed_json",
    "no_terminator",
    "crlf",
    "cr",
    "keepalive",
    "split_bytes",
    "split_random",
    "slow_headers",
    "error_event",
)

#: The largest time (TTFT, ITL, stall, slow headers, intervals) anything may take: 10 min.
MAX_TIME_MS = 600_000.0


def _number(name: str, value: Any, low: float, high: float) -> float:
    """Check that ``value`` is a finite real number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, not {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    """Check that ``value`` is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {value}")
    return value


def _origin(name: str, value: Any) -> None:
    """Check that ``value`` can be an ``Access-Control-Allow-Origin`` value."""
    if not isinstance(value, str) or not value:
        raise ConfigError(name, "must be '*' or an origin such as http://a.test")
    if any(c in value for c in "\r\n"):
        raise ConfigError(name, "cannot hold a line end")
    if not (value.isascii() and value.isprintable()):  # it goes out as a header value
        raise ConfigError(name, f"must be printable ASCII (an origin's serialisation): {value!r}")


def _is_text(value: str) -> bool:
    """True when ``value`` can be written as UTF-8 (no lone surrogates, as from argv)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingProfile:
    """When tokens are written, and how many.

    Token ``k`` (0-based) is due at ``ttft + gap_1 + ... + gap_k`` after the request was
    received, each gap an ITL; an event carrying several tokens is due with its last one.

    Attributes:
        ttft_ms: time to the first token, in milliseconds.
        itl_ms: the gap between consecutive tokens, in milliseconds.
        distribution: ``fixed`` (exactly the base values), ``uniform`` (base times
            U(1 - spread, 1 + spread)), ``normal`` (base times N(1, spread), at least 0) or
            ``lognormal`` (base times exp(N(0, spread)), so the base is the median).
        spread: the distribution's relative spread (ignored for ``fixed``); at most 1 for
            ``uniform`` and ``normal``, at most 3 for ``lognormal``.
        tokens: the output length when a request sets no limit.
        tokens_per_event: how many tokens each content event carries.
        load_k: the load model's slope: TTFT and ITL are multiplied by
            ``1 + load_k * active / capacity``, ``active`` being the streams already
            running when the request is admitted. 0 turns the model off.
        capacity: the number of streams the load model calls "full".
        prefill_ms_per_token: the prefill time of each uncached prompt token, added to
            TTFT (``mock_server.prefill``); 0 turns it off.
    """

    ttft_ms: float = 100.0
    itl_ms: float = 20.0
    distribution: str = "fixed"
    spread: float = 0.0
    tokens: int = 32
    tokens_per_event: int = 1
    load_k: float = 0.0
    capacity: int = 256
    prefill_ms_per_token: float = 0.0

    def __post_init__(self) -> None:
        _number("ttft_ms", self.ttft_ms, 0, MAX_TIME_MS)
        _number("itl_ms", self.itl_ms, 0, MAX_TIME_MS)
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                "distribution",
                f"must be one of {', '.join(DISTRIBUTIONS)}, not {self.distribution!r}",
            )
        _number("spread", self.spread, 0, 3 if self.distribution == "lognormal" else 1)
        _integer("tokens", self.tokens, 0, 1_000_000)
        _integer("tokens_per_event", self.tokens_per_event, 1, 1000)
        _number("load_k", self.load_k, 0, 1000)
        _integer("capacity", self.capacity, 1, 10_000_000)
        _number("prefill_ms_per_token", self.prefill_ms_per_token, 0, 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRates:
    """The probability, 0..1, that each fault applies to a request (drawn per request).

    The kinds are described in ``mock_server/OVERRIDES.md``; a drawn fault takes its
    parameters from ``MockConfig`` (``stall_s``, ``slow_headers_s``,
    ``keepalive_interval_ms``) and a random token position.
    """

    http_429: float = 0.0
    http_500: float = 0.0
    http_503: float = 0.0
    disconnect: float = 0.0
    stall: float = 0.0
    malformed_json: float = 0.0
    no_terminator: float = 0.0
    crlf: float = 0.0
    cr: float = 0.0
    keepalive: float = 0.0
    split_bytes: float = 0.0
    split_random: float = 0.0
    slow_headers: float = 0.0
    error_event: float = 0.0

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            _number(kind, getattr(self, kind), 0, 1)

    def items(self) -> tuple[tuple[str, float], ...]:
        """The (kind, rate) pairs, in ``FAULT_KINDS`` order."""
        return tuple((kind, getattr(self, kind)) for kind in FAULT_KINDS)

    @property
    def any(self) -> bool:
        """True when some fault has a rate above zero."""
        return any(rate > 0 for _, rate in self.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class MockConfig:
    """Everything the mock server is configured with.

    Attributes:
        host: the address to bind; loopback unless told otherwise.
        port: the TCP port; 0 picks a free one.
        seed: the seed of every response's text and every drawn time and fault.
        workers: processes sharing the port (SO_REUSEPORT).
        cors_origin: the ``Access-Control-Allow-Origin`` of the generation endpoints and
            their preflights (what a page on another origin streams from).
        control_cors_origin: the ``Access-Control-Allow-Origin`` of every other route
            (ground truth, metrics, health, models); None sends none, so a page on another
            origin cannot read them.
        max_concurrency: requests in progress above which new ones get 429; None: no cap.
        retry_after_s: the ``Retry-After`` of that 429.
        ping_interval_ms: Anthropic ``ping`` events after the first one; 0: only the first.
        keepalive_interval_ms: the interval of keep-alive comments when the ``keepalive``
            fault applies without its own interval.
        stall_s: the length of a drawn ``stall`` fault.
        slow_headers_s: the delay of a drawn ``slow_headers`` fault.
        max_body_bytes: the largest request body accepted (413 above).
        keepalive_timeout_s: how long a connection may go without a whole request head,
            after it opens or after its last response (idle, or a head left unfinished),
            before the mock closes it (aiohttp's ``keepalive_timeout``).
        body_timeout_s: how long a request body may take to arrive once its head has; a
            body still incomplete then is answered with 408 and the connection closed.
        max_counter: the largest ``max`` of ``/tutorial/counter``.
        max_output_tokens: the most tokens (answer or reasoning) any choice gets.
        max_choices: the largest ``n`` (choices) an OpenAI chat or completions request
            may ask for (400 above).
        truth_capacity: how many ground-truth records the ring buffer keeps.
        reasoning_tokens: reasoning tokens sent before the answer when a request does not
            say; 0: none.
        models: the model names ``/v1/models`` lists; the first is the default.
        high_water_bytes: a stream whose transport buffers more than this waits a tick.
        prefix_cache_tokens: the prefix cache's size in prompt tokens (LRU over blocks,
            ``mock_server.prefill``); 0: no cache, nothing is ever reported cached.
        prefix_block_tokens: the prefix cache's block size in tokens.
        timing: the timing profile.
        faults: the fault rates.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    seed: int = 0
    workers: int = 1
    cors_origin: str = "*"
    control_cors_origin: str | None = None
    max_concurrency: int | None = None
    retry_after_s: int = 1
    ping_interval_ms: float = 1000.0
    keepalive_interval_ms: float = 100.0
    stall_s: float = 1.0
    slow_headers_s: float = 1.0
    max_body_bytes: int = 1024 * 1024
    keepalive_timeout_s: float = 30.0
    body_timeout_s: float = 30.0
    max_counter: int = 1000
    max_output_tokens: int = 8192
    max_choices: int = 16
    truth_capacity: int = 10_000
    reasoning_tokens: int = 0
    models: tuple[str, ...] = ("mock-model",)
    high_water_bytes: int = 256 * 1024
    prefix_cache_tokens: int = 0
    prefix_block_tokens: int = 16
    timing: TimingProfile = field(default_factory=TimingProfile)
    faults: FaultRates = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigError("host", f"must be a host name or address, not {self.host!r}")
        _integer("port", self.port, 0, 65535)
        _integer("seed", self.seed, -(2**63), 2**63 - 1)
        _integer("workers", self.workers, 1, 256)
        _origin("cors_origin", self.cors_origin)
        if self.control_cors_origin is not None:
            _origin("control_cors_origin", self.control_cors_origin)
        if self.max_concurrency is not None:
            _integer("max_concurrency", self.max_concurrency, 1, 10_000_000)
        _integer("retry_after_s", self.retry_after_s, 0, 86_400)
        _number("ping_interval_ms", self.ping_interval_ms, 0, MAX_TIME_MS)
        if 0 < self.ping_interval_ms < 1:
            raise ConfigError("ping_interval_ms", "must be 0 (off) or at least 1 ms")
        _number("keepalive_interval_ms", self.keepalive_interval_ms, 1, MAX_TIME_MS)
        _number("stall_s", self.stall_s, 0, MAX_TIME_MS / 1000)
        _number("slow_headers_s", self.slow_headers_s, 0, MAX_TIME_MS / 1000)
        _integer("max_body_bytes", self.max_body_bytes, 64, 1024**3)
        _number("keepalive_timeout_s", self.keepalive_timeout_s, 0.01, 86_400)
        _number("body_timeout_s", self.body_timeout_s, 0.01, 86_400)
        _integer("max_counter", self.max_counter, 1, 1_000_000)
        _integer("max_output_tokens", self.max_output_tokens, 1, 1_000_000)
        _integer("max_choices", self.max_choices, 1, 128)
        _integer("truth_capacity", self.truth_capacity, 1, 10_000_000)
        _integer("reasoning_tokens", self.reasoning_tokens, 0, 1_000_000)
        _integer("high_water_bytes", self.high_water_bytes, 1024, 1024**3)
        _integer("prefix_cache_tokens", self.prefix_cache_tokens, 0, 1_000_000_000)
        _integer("prefix_block_tokens", self.prefix_block_tokens, 1, 4096)
        if (
            not isinstance(self.models, tuple)
            or not self.models
            or not all(isinstance(m, str) and m and _is_text(m) for m in self.models)
        ):
            raise ConfigError("models", "must be a non-empty list of model names")
        if not isinstance(self.timing, TimingProfile):
            raise ConfigError("timing", "must be a TimingProfile")
        if not isinstance(self.faults, FaultRates):
            raise ConfigError("faults", "must be a FaultRates")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MockConfig:
        """Build a configuration from a dict, as a TOML file reads.

        Args:
            data: the ``MockConfig`` fields, with ``timing`` and ``faults`` as nested
                mappings of their own fields.

        Returns:
            The validated configuration.

        Raises:
            ConfigError: an unknown key or a bad value; the field is dotted for nested
                tables (``timing.itl_ms``).
        """
        if not isinstance(data, Mapping):
            raise ConfigError("config", "must be a table of settings")
        values = dict(data)
        nested: dict[str, Any] = {}
        for name, kind in (("timing", TimingProfile), ("faults", FaultRates)):
            if name in values:
                nested[name] = _build(kind, values.pop(name), prefix=f"{name}.")
        if isinstance(values.get("models"), list):
            values["models"] = tuple(values["models"])
        return _build(cls, {**values, **nested}, prefix="")

    @classmethod
    def from_toml(cls, path: str | Path) -> MockConfig:
        """Read a configuration from a TOML file.

        Args:
            path: the file.

        Returns:
            The validated configuration.

        Raises:
            ConfigError: the file cannot be read or parsed (field ``config``), or it holds
                an unknown key or a bad value.
        """
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {str(path)!r}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{str(path)!r} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data)

    def with_changes(self, **changes: Any) -> MockConfig:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)


def _build(kind: type, values: Any, *, prefix: str) -> Any:
    """Construct ``kind`` from a mapping, naming unknown keys and bad values with ``prefix``."""
    if not isinstance(values, Mapping):
        raise ConfigError(prefix.rstrip(".") or "config", "must be a table of settings")
    known = {f.name for f in fields(kind)}
    for key in values:
        if key not in known:
            valid = ", ".join(sorted(known))
            raise ConfigError(f"{prefix}{key}", f"unknown setting; valid settings: {valid}")
    try:
        return kind(**values)
    except ConfigError as exc:
        if prefix and not exc.field.startswith(prefix):
            raise ConfigError(f"{prefix}{exc.field}", exc.reason) from exc
        raise
