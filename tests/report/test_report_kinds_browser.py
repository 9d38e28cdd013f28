"""Every kind of report, made by the commands a user runs and opened in headless Chromium:
a default run, a sweep, a rate search, a run with injected faults, a locust run, and a run
against a real-style app that serializes its streams. Each page must show its figures
(errors over time and the request timeline among them) and the machine's timing note; a
screenshot of each is kept under test-artifacts/report/ for a person to look at.

The figures' own geometry (legends off the data, labels apart) is measured in
test_figures.py; here the pages are made end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.servers.embedded import embedded_mock, mock_arguments
from tests.apps.conftest import _wait_ready
from tests.report.test_html_browser import ARTIFACTS, PNG_SIGNATURE, headless

pytestmark = pytest.mark.slow  # real runs, shown in a browser

__all__ = ["headless"]  # the fixture, used here

ROOT = Path(__file__).resolve().parents[2]
RUN = (sys.executable, "-m", "harness.cli", "run", "--quiet")
#: What the sample app is asked (its own JSON body, not an OpenAI one).
APP_BODY = '{"prompt": "{prompt}"}'
#: Page heights: every figure and table of the longest page fits.
WINDOW = "--window-size=1200,4200"


def _command(arguments: list[str], out: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [*arguments, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert (out / "report.html").exists(), result.stdout[-3000:] + result.stderr[-3000:]


def _default(out: Path, env: dict[str, str]) -> None:
    mock = ["--mock-ttft-ms", "100", "--mock-itl-ms", "20", "--mock-tokens", "20"]
    _command([*RUN, "--requests", "60", "--concurrency", "8", *mock], out, env)


def _sweep(out: Path, env: dict[str, str]) -> None:
    mock = ["--mock-ttft-ms", "50", "--mock-itl-ms", "10", "--mock-tokens", "10"]
    _command([*RUN, "--sweep", "concurrency=1,4,16", "--requests", "24", *mock], out, env)


def _max_rate(out: Path, env: dict[str, str]) -> None:
    # TTFT grows with the streams in flight, so some rate misses the 150 ms target
    loaded = ["--load-k", "6", "--capacity", "8"]
    with embedded_mock(mock_arguments(ttft_ms=40, itl_ms=10, tokens=10, extra=loaded)) as mock:
        search = ["--find-max-rate", "--slo", "ttft=0.15", "--duration", "2", "--rate", "4"]
        _command([*RUN, "--url", mock.base_url, *search], out, env)


def _faults(out: Path, env: dict[str, str]) -> None:
    faults = ["--fault-rate", "http_500=0.1", "--fault-rate", "disconnect=0.1",
              "--fault-rate", "stall=0.05"]  # fmt: skip
    with embedded_mock(mock_arguments(ttft_ms=50, itl_ms=10, tokens=20, extra=faults)) as mock:
        load = ["--requests", "80", "--concurrency", "8", "--idle-timeout", "1"]
        _command([*RUN, "--url", mock.base_url, *load], out, env)


def _locust(out: Path, env: dict[str, str]) -> None:
    mock = ["--mock-ttft-ms", "50", "--mock-itl-ms", "10", "--mock-tokens", "10"]
    users = ["--headless", "-u", "6", "-r", "20", "-t", "4s"]
    _command([sys.executable, "-m", "harness.cli", "locust", *users, *mock], out, env)


def _slow_app(out: Path, env: dict[str, str]) -> None:
    """The sample app that calls a synchronous client inside its async handler: every
    stream waits for the one before (serialization), which the timeline shows at once."""
    with ExitStack() as stack:
        mock = stack.enter_context(embedded_mock(mock_arguments(ttft_ms=80, itl_ms=8, tokens=16)))
        app = subprocess.Popen(
            [sys.executable, "-m", "tests.apps.serve", mock.base_url, "sync_client_app"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        stack.callback(_stop, app)
        url = _wait_ready([app], 1)["sync_client_app"] + "/chat"
        request = ["--request", "json", "--body-json", APP_BODY]
        load = ["--requests", "24", "--concurrency", "4", "--slo", "ttft=0.3"]
        _command([*RUN, "--url", url, *request, *load], out, env)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


#: kind -> (how to make its run folder, what its page must show beside every page's own)
KINDS: dict[str, tuple[Callable[[Path, dict[str, str]], None], tuple[str, ...]]] = {
    "default": (_default, ("Client health over time", "No request failed.")),
    "sweep": (_sweep, ("Latency against throughput", "concurrency=16")),
    "max-rate": (_max_rate, ("Latency against throughput", "met every SLO", "missed SLO")),
    "faults": (_faults, ("error: http_status", "Up to 3 sample requests per kind")),
    "locust": (_locust, ("locust-",)),
    "slow-app": (_slow_app, ("streaming: missed an SLO", "ttft ≤ 300 ms")),
}
#: On every page: the new figures and the note on the machine's timing error.
EVERY_PAGE = (
    "TTFT distribution",
    "Inter-token latency",
    "Requests ending per second, errors by kind",
    "Request timeline",
    "not calibrated: run `sse-harness calibrate`",
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The report page of each kind, made on first use. The runs see an empty cache
    folder, so no calibration of this machine makes one page differ from the next."""
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT)}
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            out = tmp_path_factory.mktemp(f"kind-{kind}")
            KINDS[kind][0](out, env)
            made[kind] = out / "report.html"
        return made[kind]

    return get


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_report_shows_its_figures(
    kind: str, pages: Callable[[str], Path], headless: Callable[..., str]
) -> None:
    page = pages(kind)
    dom = headless(page, "--dump-dom")
    for text in (*EVERY_PAGE, *KINDS[kind][1]):
        assert text.replace("≤", "&le;") in dom or text in dom, text
    assert ">None<" not in dom
    assert "None from server usage" not in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report-{kind}.png"
    shot.unlink(missing_ok=True)
    headless(page, f"--screenshot={shot}", WINDOW, "--hide-scrollbars")
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 50_000  # figures and tables, not a blank page
