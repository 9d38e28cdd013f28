"""Which faults apply to one response, with their parameters: pure, no I/O.

A request's ``fault`` override (``X-Mock-Fault``) is used as given; without one, every
fault kind applies with its configured rate, drawn with the request's draw generator
(always one draw per kind, so the sequence does not depend on the rates). A drawn fault
takes its parameters from the configuration (``stall_s``, ``slow_headers_s``,
``keepalive_interval_ms``) and a random token position.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mock_server.config import MockConfig
from mock_server.overrides import FaultSpec

__all__ = ["Faults", "resolve_faults"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """The faults that apply to one response, resolved to concrete parameters.

    Token-event positions are 1-based; ``names`` lists them as specs for the record and
    ``kinds`` as kinds of ``FAULT_KINDS`` for the metrics.
    """

    http_status: int | None = None
    disconnect_after: int | None = None
    stall_at: int | None = None
    stall_s: float = 0.0
    malformed_at: int | None = None
    error_at: int | None = None
    no_terminator: bool = False
    newline: str = "\n"
    keepalive_ms: float | None = None
    split: str | None = None
    slow_headers_s: float = 0.0
    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()


def resolve_faults(
    config: MockConfig, specs: tuple[FaultSpec, ...] | None, rng: random.Random, events: int
) -> Faults:
    """Turn fault specs (or, when None, a draw from the configured rates) into ``Faults``.

    Args:
        config: the configuration (rates and the default parameters of drawn faults).
        specs: the request's fault override, or None to draw.
        rng: the request's draw generator.
        events: the number of token events (drawn positions fall among them).

    Returns:
        The resolved faults.
    """
    if specs is None:
        specs = _draw_faults(config, rng, events)
    values: dict[str, Any] = {}
    for spec in specs:
        kind = spec.kind
        if kind.startswith("http_"):
            values.setdefault("http_status", int(kind[5:]))
        elif kind == "disconnect":
            values["disconnect_after"] = spec.at
        elif kind == "stall":
            values["stall_at"] = spec.at or 1
            values["stall_s"] = config.stall_s if spec.value is None else spec.value
        elif kind == "malformed_json":
            values["malformed_at"] = spec.at or 1
        elif kind == "error_event":
            values["error_at"] = spec.at or 1
        elif kind == "no_terminator":
            values["no_terminator"] = True
        elif kind in ("crlf", "cr"):
            values["newline"] = "\r\n" if kind == "crlf" else "\r"
        elif kind == "keepalive":
            values["keepalive_ms"] = (
                config.keepalive_interval_ms if spec.value is None else spec.value
            )
        elif kind in ("split_bytes", "split_random"):
            values["split"] = kind[6:]
        elif kind == "slow_headers":
            values["slow_headers_s"] = config.slow_headers_s if spec.value is None else spec.value
    names = tuple(str(spec) for spec in specs)
    return Faults(**values, names=names, kinds=tuple(spec.kind for spec in specs))


def _draw_faults(config: MockConfig, rng: random.Random, events: int) -> tuple[FaultSpec, ...]:
    """One draw per kind, always, so the generator's sequence does not depend on rates."""
    specs: list[FaultSpec] = []
    span = max(events, 1)
    for kind, rate in config.faults.items():
        hit = rng.random() < rate
        position = rng.randint(1, span)
        if not hit:
            continue
        if kind == "disconnect":
            specs.append(FaultSpec(kind=kind, at=position - 1))
        elif kind in ("stall", "malformed_json", "error_event"):
            specs.append(FaultSpec(kind=kind, at=position))
        else:
            specs.append(FaultSpec(kind=kind))
    return tuple(specs)
