"""The terminal's short table of the server's own figures beside the client's."""

from __future__ import annotations

from typing import Any

from rich.table import Table

__all__ = ["server_table"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def _bound(figure: dict[str, Any], stat: str) -> str:
    bound = (figure.get("bound_s") or {}).get(stat)
    return "unbounded" if bound is None else f"± {bound * 1000:,.1f}"


def server_table(summary: dict[str, Any]) -> Table | None:
    """Client and server TTFT and E2E side by side, with the server's bucket bound, and
    its gauges in the caption; None when no server was scraped."""
    server = summary.get("server")
    if not server:
        return None
    name = server.get("recognised") or "unrecognised server"
    table = Table(title=f"the server's own view ({name}, {server['scrapes']} scrapes, "
                  f"{server['scrape_errors']} failed)")  # fmt: skip
    for column in ("metric", "client p50", "server p50", "bound", "client p99", "server p99",
                   "bound"):  # fmt: skip
        table.add_column(column, justify="left" if column == "metric" else "right")
    for label, ours, theirs in (("TTFT (ms)", "ttft_s", "server_ttft_s"),
                                ("E2E (ms)", "e2e_s", "server_e2e_s")):  # fmt: skip
        figure = server.get(theirs)
        if not figure:
            continue
        client = summary.get(ours) or {}
        table.add_row(
            label,
            *(_ms(client.get("p50")), _ms(figure.get("p50")), _bound(figure, "p50")),
            *(_ms(client.get("p99")), _ms(figure.get("p99")), _bound(figure, "p99")),
        )
    if (queue := server.get("server_queue_s")) is not None:
        table.add_row("queue (ms)", "", _ms(queue.get("p50")), _bound(queue, "p50"), "",
                      _ms(queue.get("p99")), _bound(queue, "p99"))  # fmt: skip
    notes = []
    for key, label in (("running", "running"), ("waiting", "waiting")):
        if (gauge := server.get(key)) is not None:
            notes.append(f"{label} max {gauge['max']:g}")
    if (kv := server.get("kv_cache_usage")) is not None:
        notes.append(f"KV cache max {kv['max']:.0%}")
    if (rate := server.get("generation_tokens_per_s")) is not None:
        notes.append(f"{rate:,.1f} tokens/s by the server")
    if server.get("first_error"):
        notes.append(f"first failed scrape: {server['first_error']}")
    table.caption = "; ".join(notes) or None
    return table
