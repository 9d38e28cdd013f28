"""``sse-harness bench locust``: the locust user against the async client, side by side.

One embedded mock (pinned to the first core where there are two or more) serves every
client in turn, the clients run on the other cores:

* the locust user with each HTTP client (``--http-client fasthttp`` and ``requests``), as
  ``locust -f scenarios/llm_stream.py --headless -u USERS -r USERS -t SECONDS`` in a
  process of its own;
* the async client as ``sse-harness run --transport aiohttp --concurrency USERS
  --duration SECONDS`` does it (same ``Runner``), in this process.

Figures per client: the client's CPU per SSE event (the locust process's CPU from test
start to stop, or this process's during the run) and the TTFT error against the mock's
ground truth: each request's first-token arrival minus the mock's write time of that
token (the same monotonic clock), which is exactly how far the measured TTFT is off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.accuracy import arrival_lags
from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.runner import Runner
from harness.load.schedule import Bounds, ClosedLoop
from harness.record import RequestRecord
from harness.results import read_all_records, read_summary
from harness.servers.embedded import embedded_mock, fetch_truths, mock_arguments
from harness.transports import Timeouts, run_event_loop

__all__ = ["ClientFigures", "run_locust_bench"]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "llm_stream.py"
LOCUST_CLIENTS = ("fasthttp", "requests")


@dataclass(frozen=True, slots=True)
class ClientFigures:
    """One client's run against the mock."""

    client: str
    users: int
    requests: int
    errors: int
    events: int
    cpu_s: float
    cpu_us_per_event: float | None
    ttft_error_p50_ms: float | None
    ttft_error_p99_ms: float | None
    ttft_error_max_ms: float | None
    token_lag_p99_ms: float | None


def _figures(
    client: str, users: int, records: Sequence[RequestRecord], cpu_s: float, base_url: str
) -> ClientFigures:
    ids = [r.mock_request_id for r in records if r.mock_request_id]
    truths = fetch_truths(base_url, ids)
    lags = arrival_lags(records, truths)
    events = sum(r.events for r in records)
    return ClientFigures(
        client=client,
        users=users,
        requests=len(records),
        errors=sum(1 for r in records if not r.ok),
        events=events,
        cpu_s=cpu_s,
        cpu_us_per_event=cpu_s * 1e6 / events if events else None,
        ttft_error_p50_ms=lags["first_token_lag_p50_ms"],
        ttft_error_p99_ms=lags["first_token_lag_p99_ms"],
        ttft_error_max_ms=lags["first_token_lag_max_ms"],
        token_lag_p99_ms=lags["lag_p99_ms"],
    )


def _locust(
    base_url: str, http_client: str, users: int, seconds: float, cpus: set[int] | None
) -> ClientFigures:
    with tempfile.TemporaryDirectory(prefix="sse-harness-bench-") as tmp:
        out = Path(tmp) / "run"
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(SCENARIO),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds:g}s",
            "--host",
            base_url,
            "--out",
            str(out),
            "--stop-timeout",
            "30",
            "--http-client",
            http_client,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(process.pid, cpus)
        _, errors = process.communicate(timeout=seconds + 120)
        summary_path = out / "summary.json"
        if process.returncode not in (0, 1) or not summary_path.exists():
            raise RuntimeError(f"locust failed ({process.returncode}): {errors.decode()[-2000:]}")
        summary = read_summary(summary_path).as_dict()
        records = read_all_records(out / "results.jsonl")
    cpu_s = float(summary["locust"]["client_cpu_s"])
    return _figures(f"locust {http_client}", users, records, cpu_s, base_url)


def _async(base_url: str, users: int, seconds: float) -> ClientFigures:
    config = RunConfig(
        spec=RequestSpec(url=base_url),
        profile=ClosedLoop(concurrency=users, ramp_up_s=1.0),
        bounds=Bounds(duration_s=seconds, grace_s=30),
        transport="aiohttp",
        timeouts=Timeouts(connect_s=10, ttft_s=30, idle_s=30, total_s=seconds + 60),
    )
    records: list[RequestRecord] = []
    cpu_start = time.process_time()
    run_event_loop(Runner(config, records.append).run())
    cpu_s = time.process_time() - cpu_start
    return _figures("async aiohttp", users, records, cpu_s, base_url)


def run_locust_bench(
    *,
    users: int = 100,
    seconds: float = 10.0,
    ttft_ms: float = 50.0,
    itl_ms: float = 20.0,
    tokens: int = 50,
    locust_clients: Sequence[str] = LOCUST_CLIENTS,
) -> Iterator[ClientFigures]:
    """Each locust HTTP client, then the async client, against one mock."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    capacity = str(max(users * 200, 20000))
    extra = ("--truth-capacity", capacity, "--log-level", "warning")
    arguments = mock_arguments(ttft_ms=ttft_ms, itl_ms=itl_ms, tokens=tokens, extra=extra)
    cpus = set(cores[1:]) if len(cores) > 1 else None
    with embedded_mock(arguments, cpu=cores[0] if cpus else None) as mock:
        for http_client in locust_clients:
            yield _locust(mock.base_url, http_client, users, seconds, cpus)
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            yield _async(mock.base_url, users, seconds)
        finally:
            if cpus:
                os.sched_setaffinity(0, set(cores))
