"""Real runs against the embedded mock, made once and shared by the report tests."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, ClosedLoop
from harness.run import RunResult, execute
from harness.servers.embedded import embedded_mock, mock_arguments
from harness.transports import Timeouts

#: Requests per run: enough that p50 and p90 of TTFT have 5 values beyond them.
REQUESTS = 60


def run_against_mock(out_dir: Path, *, ttft_ms: float, **config: object) -> RunResult:
    """One bounded run (12 users) against a fresh embedded mock of the given TTFT (ITL 40 ms)."""
    with embedded_mock(mock_arguments(ttft_ms=ttft_ms, itl_ms=40, tokens=6)) as mock:
        settings: dict[str, object] = {
            "spec": RequestSpec(url=mock.base_url),
            "profile": ClosedLoop(concurrency=12, ramp_up_s=0.0),
            "bounds": Bounds(requests=REQUESTS),
            "timeouts": Timeouts(ttft_s=10, idle_s=10, total_s=30),
            # these runs are compared with each other: a busy test machine must not make
            # one of them client-bound, which would leave the comparison without a verdict
            "self_watch": False,
        }
        settings.update(config)
        run_config = RunConfig(**settings)  # type: ignore[arg-type]
        return asyncio.run(execute(run_config, out_dir, truth_url=mock.base_url))


#: Where a record keeps the times of its tokens (a stream's tokens move together).
TOKEN_TIMES = ("t_first_token_ns", "t_first_answer_ns", "t_end_ns")


def _retimed(record: dict[str, Any], first_delay_ns: int, gap_scale: float) -> None:
    """Move ``record``'s tokens ``first_delay_ns`` later and stretch the gaps between them."""
    times = record.get("token_times_ns") or []
    if not times:
        return
    first = times[0]
    moved = [first + first_delay_ns + round((t - first) * gap_scale) for t in times]
    tail_ns = record["t_end_ns"] - times[-1]
    record["token_times_ns"] = moved
    for key in TOKEN_TIMES:
        if record.get(key) == first:
            record[key] = moved[0]
    record["t_end_ns"] = moved[-1] + tail_ns


def _derived(base: Path, out: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the run in ``base`` whose records went through ``change``."""
    shutil.copytree(base, out, dirs_exist_ok=True)
    lines = []
    for line in (base / "results.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        change(record)
        lines.append(json.dumps(record))
    (out / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _slower(record: dict[str, Any]) -> None:
    """Every stream's tokens later by a fifth of its TTFT: TTFT 20% up, ITL unchanged."""
    if record.get("t_first_token_ns") is not None:
        _retimed(record, (record["t_first_token_ns"] - record["t_sent_ns"]) // 5, 1.0)


def _jittered(seed: int) -> Callable[[dict[str, Any]], None]:
    """Each stream's TTFT and gaps changed by up to 5% and 3%, drawn from ``seed``: how a
    second run of the same server on a quiet machine differs."""
    rng = random.Random(seed)

    def change(record: dict[str, Any]) -> None:
        if record.get("t_first_token_ns") is not None:
            ttft_ns = record["t_first_token_ns"] - record["t_sent_ns"]
            _retimed(record, round(ttft_ns * rng.uniform(-0.05, 0.05)), rng.uniform(0.97, 1.03))

    return change


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Run folders by name: ``base``, a real run against the mock (TTFT 100 ms); ``slow``,
    its records with a TTFT 20% longer; ``again``, its records with the noise of a second
    run. Both are made from ``base`` rather than run again: on a busy machine two real runs
    differ by whatever else the machine did, and the comparison would rightly say so."""
    made: dict[str, Path] = {}
    changes = {"slow": _slower, "again": _jittered(seed=5)}

    def get(name: str) -> Path:
        if name not in made:
            out = tmp_path_factory.mktemp(f"run-{name}")
            if name == "base":
                run_against_mock(out, ttft_ms=100.0)
            else:
                _derived(get("base"), out, changes[name])
            made[name] = out
        return made[name]

    return get


#: What a hostile endpoint puts where a report shows endpoint text.
SCRIPT = '<script>alert("pwned")</script>'
IMAGE = "<img src=x onerror=alert(1)>"
#: A header value: like an API key, it must never reach a report.
HEADER_VALUE = "<b>secret-header-value</b>"


async def _hostile_run(out_dir: Path) -> RunResult:
    """Run against an endpoint that answers with markup: an HTTP 500 whose body and
    Content-Type carry a script, and streams whose in-stream error message does."""
    from aiohttp import web

    served = 0

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal served
        served += 1
        await request.read()
        if served % 2:
            return web.Response(status=500, body=f"{SCRIPT}{IMAGE}".encode(),
                                headers={"Content-Type": f'text/html; x="{SCRIPT}"'})  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"choices": [{"index": 0, "delta": {"content": "hello"}}]}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        error = {"error": {"message": f"{SCRIPT}{IMAGE}", "type": "</td></tr><script>"}}
        await response.write(f"data: {json.dumps(error)}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        config = RunConfig(
            spec=RequestSpec(url=f"http://127.0.0.1:{port}/v1/chat/completions",
                             headers=(("X-Note", HEADER_VALUE),)),
            profile=ClosedLoop(concurrency=2, ramp_up_s=0.0),
            bounds=Bounds(requests=6),
            timeouts=Timeouts(ttft_s=10, idle_s=10, total_s=30),
        )  # fmt: skip
        return await execute(config, out_dir)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder made against an endpoint that tries to inject script into reports."""
    out = tmp_path_factory.mktemp("run-hostile")
    asyncio.run(_hostile_run(out))
    return out
