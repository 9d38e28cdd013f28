"""`bench mock --rounds`: each level's median and range over the rounds, from fake levels."""

from __future__ import annotations


def test_rounds_give_each_level_its_median_and_range() -> None:
    from rich.console import Console

    from harness.calibration.mock_bench import Level
    from harness.cli.bench_command import _mock_spread_table

    def level(streams: int, p99: float, held: int | None = None, server: str = "mock") -> Level:
        return Level(workers=1, streams=streams, held=streams if held is None else held,
                     ended_early=0, tokens=100, tokens_per_s=50.0 * streams,
                     lateness_p50_ms=0.1, lateness_p99_ms=p99, lateness_max_ms=p99 * 2,
                     mock_cpu_percent=10.0, client_cpu_percent=5.0, server=server)  # fmt: skip

    rounds = [[level(500, 3.0, server="plain"), level(500, 0.9), level(1000, 2.6)],
              [level(500, 5.0, server="plain"), level(500, 4.1), level(1000, 1.4)],
              [level(500, 4.0, server="plain"), level(500, 1.2),
               level(1000, 1.9, held=990)]]  # fmt: skip
    console = Console(record=True, width=200)
    console.print(_mock_spread_table(rounds, target_ms=2.0))
    text = console.export_text()
    rows = {
        tuple(cell.strip() for cell in line.split("│")[1:3]): line
        for line in text.splitlines()
        if "│" in line
    }
    assert "1.20 (0.90-4.10)" in rows["mock", "500"]
    assert "2 of 3" in rows["mock", "500"]  # 4.1 ms missed the 2 ms bound
    assert "1.90 (1.40-2.60)" in rows["mock", "1000"]
    assert "1 of 3" in rows["mock", "1000"]  # 2.6 ms missed, and 990 of 1,000 streams held
    assert "4.00 (3.00-5.00)" in rows["plain", "500"]  # the yardstick, in a row of its own
