"""The mock server's command line: ``python -m mock_server`` and ``sse-harness mock``.

``add_arguments`` adds the options to any parser (``sse-harness mock`` reuses it),
``config_from_args`` builds the configuration (a TOML file first, flags over it), and
``main`` serves. This module is the only one in ``mock_server`` that prints: the line
``mock LLM server on http://HOST:PORT (N workers)`` once every worker listens (with the
bound port, so ``--port 0`` can be read by a script), and ``error: <field>: <reason>``
with exit code 2 for a bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.errors import ConfigError
from harness.lifeline import die_with_parent, watch_pipe
from mock_server.config import DISTRIBUTIONS, FAULT_KINDS, FaultRates, MockConfig
from mock_server.server import serve

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_arguments", "config_from_args", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: flag destination -> the TimingProfile field it sets.
_TIMING_FLAGS = {
    "ttft_ms": "ttft_ms",
    "itl_ms": "itl_ms",
    "tokens": "tokens",
    "tokens_per_event": "tokens_per_event",
    "distribution": "distribution",
    "spread": "spread",
    "load_k": "load_k",
    "capacity": "capacity",
    "prefill_ms_per_token": "prefill_ms_per_token",
}
#: flag destination -> the MockConfig field it sets.
_CONFIG_FLAGS = (
    "host",
    "port",
    "seed",
    "workers",
    "cors_origin",
    "control_cors_origin",
    "max_concurrency",
    "keepalive_timeout_s",
    "body_timeout_s",
    "ping_interval_ms",
    "truth_capacity",
    "reasoning_tokens",
    "prefix_cache_tokens",
    "prefix_block_tokens",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mock server's options to ``parser``.

    Every option defaults to None ("not given"), so a TOML file's value stands unless a
    flag overrides it.
    """
    listen = parser.add_argument_group("listening")
    listen.add_argument("--host", help="address to bind (default 127.0.0.1: loopback only)")
    listen.add_argument("--port", type=int, help="TCP port; 0 picks a free one (default 8000)")
    listen.add_argument(
        "--workers", type=int, help="processes sharing the port with SO_REUSEPORT (default 1)"
    )
    listen.add_argument(
        "--cors-origin",
        help="Access-Control-Allow-Origin of the generation endpoints (default *)",
    )
    listen.add_argument(
        "--control-cors-origin",
        metavar="ORIGIN",
        help="Access-Control-Allow-Origin of /mock/requests, /metrics, /healthz and /v1/models "
        "(default: none, so other origins cannot read them)",
    )
    listen.add_argument(
        "--max-concurrency",
        type=int,
        help="requests in progress above which new ones get 429 + Retry-After (default: no cap)",
    )
    listen.add_argument(
        "--keepalive-timeout-s",
        type=float,
        help="close a connection idle or with an unfinished request head this long (default 30)",
    )
    listen.add_argument(
        "--body-timeout-s",
        type=float,
        help="answer 408 and close when a request body takes longer than this (default 30)",
    )
    listen.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file")

    timing = parser.add_argument_group("timing and output")
    timing.add_argument("--ttft-ms", type=float, help="time to first token in ms (default 100)")
    timing.add_argument("--itl-ms", type=float, help="inter-token latency in ms (default 20)")
    timing.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        help="how TTFT and ITL are drawn around their values (default fixed)",
    )
    timing.add_argument(
        "--spread", type=float, help="relative spread of the distribution (e.g. 0.2)"
    )
    timing.add_argument(
        "--tokens", type=int, help="output tokens when a request sets no limit (default 32)"
    )
    timing.add_argument("--tokens-per-event", type=int, help="tokens per event (default 1)")
    timing.add_argument(
        "--load-k",
        type=float,
        help="load model slope: TTFT and ITL grow by 1 + k * active / capacity (default 0)",
    )
    timing.add_argument("--capacity", type=int, help="the load model's full capacity")
    timing.add_argument(
        "--prefill-ms-per-token",
        type=float,
        help="prefill time per uncached prompt token, added to TTFT (default 0)",
    )
    timing.add_argument(
        "--prefix-cache-tokens",
        type=int,
        help="a prefix cache of this many prompt tokens (LRU over blocks) that reports "
        "cached tokens and skips their prefill (default 0: none)",
    )
    timing.add_argument(
        "--prefix-block-tokens", type=int, help="the prefix cache's block size (default 16)"
    )
    timing.add_argument(
        "--reasoning-tokens",
        type=int,
        help="reasoning tokens before every answer (chat, responses, messages; default 0)",
    )
    timing.add_argument(
        "--seed", type=int, help="seed of every response text and drawn time (default 0)"
    )

    other = parser.add_argument_group("faults and records")
    other.add_argument(
        "--fault-rate",
        action="append",
        metavar="KIND=P",
        help="apply a fault to a fraction P of requests; repeatable. KIND: "
        + ", ".join(FAULT_KINDS),
    )
    other.add_argument(
        "--ping-interval-ms", type=float, help="Anthropic ping interval; 0: only the first ping"
    )
    other.add_argument(
        "--truth-capacity",
        type=int,
        help="ground-truth records kept for /mock/requests/{id} (default 10000)",
    )
    other.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")

    parent = parser.add_argument_group(
        "lifetime (for a program that starts the server as its child)"
    )
    parent.add_argument(
        "--parent-pipe",
        type=int,
        metavar="FD",
        help="stop as on SIGTERM when this pipe's write end is closed (the parent has ended)",
    )
    parent.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="Linux: stop as on SIGTERM when process PID, the parent, ends (PR_SET_PDEATHSIG); "
        "at once if PID is no longer the parent",
    )


def _fault_rates(specs: list[str], base: FaultRates) -> FaultRates:
    rates: dict[str, Any] = {}
    for spec in specs:
        kind, equals, value = spec.partition("=")
        if not equals or kind not in FAULT_KINDS:
            raise ConfigError(
                "fault-rate", f"write KIND=P with KIND one of the fault kinds: {spec!r}"
            )
        try:
            rates[kind] = float(value)
        except ValueError as exc:
            raise ConfigError(kind, f"must be a number between 0 and 1, not {value!r}") from exc
    return replace(base, **rates)


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """Build the configuration: the ``--config`` file first, then the flags over it.

    Args:
        args: the parsed options of ``add_arguments``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file or a flag holds a bad value.
    """
    config = MockConfig.from_toml(args.config) if args.config else MockConfig()
    timing: dict[str, Any] = {
        field: getattr(args, flag)
        for flag, field in _TIMING_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    changes: dict[str, Any] = {
        name: getattr(args, name) for name in _CONFIG_FLAGS if getattr(args, name, None) is not None
    }
    if timing:
        changes["timing"] = replace(config.timing, **timing)
    if args.fault_rate:
        changes["faults"] = _fault_rates(args.fault_rate, config.faults)
    return replace(config, **changes) if changes else config


def _tie_to_parent(args: argparse.Namespace) -> None:
    """``--parent-pid`` and ``--parent-pipe``: a parent's end stops the server as SIGTERM does
    (in-flight streams are closed, workers stopped), so it never outlives its parent."""
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid, signal.SIGTERM)
    if args.parent_pipe is not None:
        watch_pipe(args.parent_pipe, lambda: os.kill(os.getpid(), signal.SIGTERM))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the mock until SIGINT or SIGTERM.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        0 after a clean stop, 1 when serving failed, 2 for a bad configuration.
    """
    parser = argparse.ArgumentParser(
        prog="python -m mock_server",
        description=(
            "A mock LLM server: OpenAI chat/completions/responses, Anthropic messages and "
            "tutorial formats, streamed as SSE with deterministic text, configurable timing, "
            "faults and per-token ground truth (GET /mock/requests/{id})."
        ),
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        _tie_to_parent(args)
    except OSError as exc:
        print(f"error: parent-pipe: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=str(args.log_level).upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc.field}: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE

    def ready(port: int) -> None:
        workers = f"{config.workers} worker{'s' if config.workers != 1 else ''}"
        print(f"mock LLM server on http://{config.host}:{port} ({workers})", flush=True)

    try:
        return serve(config, on_ready=ready)
    except OSError as exc:
        print(
            f"error: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
