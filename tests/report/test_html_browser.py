"""The HTML report in headless Chromium: it renders with its figures, and a hostile
endpoint's markup stays text. Screenshots are kept as test artifacts."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path

pytestmark = pytest.mark.slow  # a real run, shown in a browser

ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots go: $SSE_HARNESS_ARTIFACTS, else test-artifacts/ (git-ignored).
ARTIFACTS = Path(os.environ.get("SSE_HARNESS_ARTIFACTS", ROOT / "test-artifacts")) / "report"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def headless(tmp_path: Path) -> Callable[..., str]:
    """Run Chromium once on a file (``--dump-dom`` or ``--screenshot``); its output."""
    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def run(page: Path, *flags: str) -> str:
        profile = f"--user-data-dir={tmp_path / 'profile'}"
        command = [binary, *CHROMIUM_FLAGS, profile, *flags, page.resolve().as_uri()]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, start_new_session=True)  # fmt: skip
        try:
            out, _ = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        assert process.returncode == 0, out[-2000:]
        return out

    return run


def test_the_report_renders_with_its_figures(
    runs: Callable[[str], Path], headless: Callable[..., str]
) -> None:
    page = runs("base") / "report.html"
    dom = headless(page, "--dump-dom")
    assert "<h1>sse-harness run</h1>" in dom
    assert dom.count("<svg") == 6  # the client did not watch itself in this run
    assert dom.count("<path") > 100  # the figures drew their lines and bars
    assert "TTFT distribution" in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    headless(page, f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 2400)
    assert len(data) > 50_000  # figures and tables, not a blank page


def test_a_hostile_endpoints_script_is_inert_in_the_browser(
    hostile_run: Path, headless: Callable[..., str]
) -> None:
    page = hostile_run / "report.html"
    dom = headless(page, "--dump-dom")
    assert "<script" not in dom.lower()
    assert "<img" not in dom.lower()
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;' in dom  # shown as text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    headless(page, f"--screenshot={ARTIFACTS / 'report-hostile.png'}", "--window-size=1200,2400")
    assert (ARTIFACTS / "report-hostile.png").read_bytes().startswith(PNG_SIGNATURE)
