"""pytest fixtures for streaming LLM endpoints and the apps in front of them.

Installing sse-harness registers this module as a pytest plugin (the ``pytest11`` entry
point ``sse_harness``). Importing it costs next to nothing: the harness, the mock and
their libraries load only when a test uses a fixture.

* ``mock_llm``: the mock LLM server, started for the test on a free loopback port. Its
  options come from a marker, e.g. ``@pytest.mark.mock_llm(ttft_ms=50, itl_ms=5,
  tokens=10)`` (any ``python -m mock_server`` option: ``fault_rate={"http_500": 0.1}``
  becomes ``--fault-rate http_500=0.1``). It gives the base URL, per-request overrides
  (``headers(...)``, ``url(...)``) and the mock's ground truth (``truth(...)``).
* ``mock_llm_factory``: start mocks with options of the test's choosing.
* ``sse_load``: run a bounded load (by default at the test's ``mock_llm``) and return
  the run's summary, as in ``summary.json``; judge it with ``harness.gate``.
* ``sse_check``: check an endpoint's conformance (by default the test's ``mock_llm``)
  and return the ``Report``; ``fail_on="warn"`` makes a WARN fail ``report.failed``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["MockLLM", "mock_llm", "mock_llm_factory", "sse_check", "sse_load"]

#: Per-request overrides: keyword -> the mock's ``X-Mock-*`` header and query parameter.
_OVERRIDES = {
    "ttft_ms": "Ttft-Ms",
    "itl_ms": "Itl-Ms",
    "tokens": "Tokens",
    "reasoning_tokens": "Reasoning-Tokens",
    "fault": "Fault",
    "seed": "Seed",
}
CHAT_PATH = "/v1/chat/completions"
#: The longest a scenario's run may take in ``sse_load`` before it is given up.
SCENARIO_TIMEOUT_S = 3600


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_llm(*arguments, **options): options of the mock LLM server that the mock_llm "
        "fixture starts (ttft_ms=, itl_ms=, tokens=, fault_rate={...}, or raw arguments)",
    )


def _override_values(overrides: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for key, value in overrides.items():
        if key not in _OVERRIDES:
            raise TypeError(f"unknown mock override {key!r}; use {', '.join(_OVERRIDES)}")
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        values[key] = str(value)
    return values


@dataclass(frozen=True, slots=True)
class MockLLM:
    """A running mock LLM server (see ``mock_server/OVERRIDES.md`` for what it can do)."""

    base_url: str
    pid: int

    @property
    def chat_url(self) -> str:
        """The OpenAI chat completions endpoint."""
        return self.base_url + CHAT_PATH

    def url(self, path: str = CHAT_PATH, **overrides: Any) -> str:
        """``path`` on the mock, with overrides as query parameters (for ``EventSource``
        and other clients that cannot set headers): ``url("/tutorial/events", tokens=3)``."""
        query = {f"mock_{k}": v for k, v in _override_values(overrides).items()}
        return self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")

    def headers(self, **overrides: Any) -> dict[str, str]:
        """Per-request overrides as ``X-Mock-*`` headers: ``ttft_ms``, ``itl_ms``,
        ``tokens``, ``reasoning_tokens``, ``seed``, ``fault`` (a spec or a list of specs,
        e.g. ``fault=["stall=0.5@3", "crlf"]``)."""
        return {f"X-Mock-{_OVERRIDES[k]}": v for k, v in _override_values(overrides).items()}

    def truth(self, mock_request_id: str, *, wait_ms: int = 2000) -> dict[str, Any] | None:
        """What the mock did for one request (its ``x-mock-request-id`` header): when it
        wrote each token, whether it saw a disconnect, ...; waits up to ``wait_ms`` for
        the request to end first."""
        from harness.servers.embedded import fetch_truth

        rid = f"{mock_request_id}?wait_ms={int(wait_ms)}"
        return fetch_truth(self.base_url, rid, timeout_s=wait_ms / 1000 + 5.0)


def _mock_arguments(arguments: Sequence[str], options: Mapping[str, Any]) -> list[str]:
    """Marker or factory options as ``python -m mock_server`` arguments."""
    result = [str(a) for a in arguments]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            result.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, Mapping):
            for name, item in value.items():
                result += [flag, f"{name}={item}"]
        elif isinstance(value, list | tuple):
            for item in value:
                result += [flag, str(item)]
        else:
            result += [flag, str(value)]
    return result


@pytest.fixture
def mock_llm_factory() -> Iterator[Callable[..., MockLLM]]:
    """Start mock LLM servers: ``mock_llm_factory(ttft_ms=20, tokens=5)``; every one is
    stopped when the test ends."""
    from harness.servers.embedded import embedded_mock

    with ExitStack() as stack:

        def start(*arguments: str, **options: Any) -> MockLLM:
            running = stack.enter_context(embedded_mock(_mock_arguments(arguments, options)))
            return MockLLM(running.base_url, running.pid)

        yield start


@pytest.fixture
def mock_llm(request: pytest.FixtureRequest, mock_llm_factory: Callable[..., MockLLM]) -> MockLLM:
    """The mock LLM server for this test, with the options of its ``mock_llm`` marker."""
    marker = request.node.get_closest_marker("mock_llm")
    arguments, options = (marker.args, marker.kwargs) if marker is not None else ((), {})
    return mock_llm_factory(*arguments, **options)


@pytest.fixture
def sse_load(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, Any]]:
    """Run a bounded load and return its summary (``summary.json``'s content, plus
    ``run_dir``: the folder with ``results.jsonl`` and ``report.html``).

    ``sse_load(url=None, *, requests=20, duration_s=None, concurrency=4, rate=None,
    warmup_s=0.0, api="openai-chat", model="mock-model", max_tokens=None, headers=None,
    prompt="Tell me a story.", transport="aiohttp", slo=None, timeout_s=60.0,
    scenario=None)``. Without a URL it loads the test's ``mock_llm``. ``rate`` switches to
    an open loop; ``slo`` (``{"ttft": 0.5}``, seconds) adds goodput. ``scenario`` (a
    scenario file, as ``sse-harness run FILE.toml`` reads it) describes the whole load
    instead of the other keywords; it runs as ``sse-harness run`` in a child process, at
    ``url``, else the file's ``url``, else the test's ``mock_llm``. Call it from
    synchronous tests.
    """

    def load(
        url: str | MockLLM | None = None,
        *,
        requests: int | None = 20,
        duration_s: float | None = None,
        concurrency: int = 4,
        rate: float | None = None,
        warmup_s: float = 0.0,
        api: str = "openai-chat",
        model: str = "mock-model",
        max_tokens: int | None = None,
        headers: Mapping[str, str] | None = None,
        prompt: str = "Tell me a story.",
        transport: str = "aiohttp",
        slo: Mapping[str, float] | None = None,
        timeout_s: float = 60.0,
        scenario: str | Path | None = None,
    ) -> dict[str, Any]:
        if scenario is not None:
            return _scenario_load(request, tmp_path_factory, Path(scenario), url)
        from harness.load.config import RunConfig
        from harness.load.payloads import RequestSpec
        from harness.load.schedule import Bounds, ClosedLoop, OpenLoop
        from harness.run import execute
        from harness.transports import Timeouts, run_event_loop

        target = request.getfixturevalue("mock_llm") if url is None else url
        truth_url = target.base_url if isinstance(target, MockLLM) else None
        endpoint = target.base_url if isinstance(target, MockLLM) else target
        profile = (
            OpenLoop(rate=rate)
            if rate is not None
            else ClosedLoop(concurrency=concurrency, ramp_up_s=0.0)
        )
        config = RunConfig(
            spec=RequestSpec(
                request=api,
                url=endpoint,
                model=model,
                max_tokens=max_tokens,
                headers=tuple((headers or {}).items()),
            ),
            profile=profile,
            bounds=Bounds(
                requests=requests, duration_s=duration_s, warmup_s=warmup_s, grace_s=timeout_s
            ),
            transport=transport,
            timeouts=Timeouts(ttft_s=timeout_s, idle_s=timeout_s, total_s=timeout_s),
            prompts=(({"role": "user", "content": prompt},),),
            slo=dict(slo or {}),
        )
        out_dir: Path = tmp_path_factory.mktemp("sse-load")
        result = run_event_loop(execute(config, out_dir, truth_url=truth_url))
        return {**result.summary, "run_dir": str(out_dir)}

    return load


def _scenario_load(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    scenario: Path,
    url: str | MockLLM | None,
) -> dict[str, Any]:
    """``sse-harness run SCENARIO`` in a child process; its summary, with ``run_dir``."""
    import json
    import subprocess
    import sys
    import tomllib

    try:
        data = tomllib.loads(scenario.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"sse_load: cannot read the scenario {scenario}: {exc}") from exc
    has_url = "url" in data or any(isinstance(t, dict) and "url" in t for t in data.values())
    target = url if url is not None or has_url else request.getfixturevalue("mock_llm")
    endpoint = target.base_url if isinstance(target, MockLLM) else target
    out_dir: Path = tmp_path_factory.mktemp("sse-load")
    command = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--quiet"]
    command += ["--out", str(out_dir), *(["--url", endpoint] if endpoint else [])]
    try:  # the run is bounded by its scenario; this bounds a child that hangs regardless
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=SCENARIO_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise pytest.UsageError(f"sse_load: {scenario} ran over {SCENARIO_TIMEOUT_S} s") from exc
    summary_file = out_dir / "summary.json"
    if done.returncode == 2 or not summary_file.exists():
        raise pytest.UsageError(f"sse_load: {scenario}: {done.stderr.strip()[-2000:]}")
    return {**json.loads(summary_file.read_text()), "run_dir": str(out_dir)}


@pytest.fixture
def sse_check(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Check an endpoint's conformance as ``sse-harness check`` does and return the
    ``harness.conformance.Report`` (``report.failed``, ``report.results``).

    ``sse_check(url=None, *, api="openai-chat", headers=None, fail_on="fail",
    streams=None, burst=None, timeout_s=None)``. Without a URL it checks the test's
    ``mock_llm``. With ``fail_on="warn"`` a WARN fails the verdict, as ``--fail-on warn``
    does. Call it from synchronous tests.
    """

    def check(
        url: str | MockLLM | None = None,
        *,
        api: str = "openai-chat",
        headers: Mapping[str, str] | None = None,
        fail_on: str = "fail",
        streams: int | None = None,
        burst: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        import dataclasses

        from harness.conformance import SuiteSettings, Target, check_endpoint
        from harness.load.payloads import RequestSpec

        target = request.getfixturevalue("mock_llm") if url is None else url
        truth_url = target.base_url if isinstance(target, MockLLM) else None
        endpoint = target.base_url if isinstance(target, MockLLM) else target
        settings = SuiteSettings()
        if streams is not None:
            settings = dataclasses.replace(settings, streams=streams)
        if burst is not None:
            settings = dataclasses.replace(settings, burst=burst)
        if timeout_s is not None:
            settings = dataclasses.replace(settings, timeout_s=timeout_s)
        spec = RequestSpec(request=api, url=endpoint, headers=tuple((headers or {}).items()))
        checked = Target(spec=spec, truth_url=truth_url)
        return check_endpoint(checked, settings, fail_on=fail_on)

    return check
