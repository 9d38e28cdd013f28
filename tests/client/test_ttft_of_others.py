"""Whether abandonment slows the streams that stay: TTFT per --disconnect-rate segment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.analysis.disconnects import ttft_of_others
from harness.load.config import RunConfig
from harness.load.exchange import Abandon
from harness.load.payloads import RequestSpec
from harness.load.schedule import Bounds, ClosedLoop
from harness.run import Sweep, execute
from harness.servers.embedded import EmbeddedMock
from harness.transports import Timeouts


def segment(rate: float, p50: float | None, p99: float | None) -> dict[str, object]:
    return {"disconnect_rate": rate, "summary": {"ttft_s": {"p50": p50, "p99": p99}}}


def test_each_rate_is_set_beside_the_run_without_abandonment() -> None:
    rows = ttft_of_others([segment(0, 0.100, 0.200), segment(0.2, 0.105, 0.300),
                           segment(0.5, 0.150, 0.400)])  # fmt: skip
    assert [r["disconnect_rate"] for r in rows] == [0, 0.2, 0.5]
    assert [r["change_p50"] for r in rows] == pytest.approx([0.0, 0.05, 0.5])
    assert [r["change_p99"] for r in rows] == pytest.approx([0.0, 0.5, 1.0])
    assert [r["moved"] for r in rows] == [False, False, True]


def test_without_a_rate_zero_segment_nothing_is_compared() -> None:
    rows = ttft_of_others([segment(0.2, 0.1, 0.2), segment(0.5, None, None)])
    assert all(r["change_p50"] is None and r["moved"] is None for r in rows)
    assert rows[1]["ttft_p50_s"] is None


@pytest.mark.slow
def test_a_disconnect_rate_sweep_reports_the_ttft_of_the_others(
    mock: EmbeddedMock, tmp_path: Path
) -> None:
    config = RunConfig(
        spec=RequestSpec(url=mock.base_url),
        profile=ClosedLoop(concurrency=4, ramp_up_s=0),
        bounds=Bounds(requests=12),
        timeouts=Timeouts(ttft_s=10, idle_s=10, total_s=30),
        transport="aiohttp",
        disconnect_after=Abandon(after_tokens=3),
    )
    result = asyncio.run(
        execute(
            config, tmp_path, sweep=Sweep("disconnect-rate", (0.0, 0.5)), truth_url=mock.base_url
        )
    )
    rows = result.summary["disconnect"]["ttft_of_others"]
    assert [r["disconnect_rate"] for r in rows] == [0.0, 0.5]
    assert rows[0]["change_p50"] == 0.0
    # at least the mock's TTFT (less the 0.5 ms it may write early); how much more is the
    # machine's, and so is the change against the rate-0 segment
    assert rows[1]["ttft_p50_s"] >= 0.0395
    assert rows[1]["change_p50"] == pytest.approx(rows[1]["ttft_p50_s"] / rows[0]["ttft_p50_s"] - 1)
    assert "TTFT of the streams that were not abandoned" in (tmp_path / "report.md").read_text()
