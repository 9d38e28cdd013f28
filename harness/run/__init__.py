"""``sse-harness run``: one run end to end, from configuration to the files it writes.

A run is one segment, or one per level of a sweep or a rate search. The package's rooms:

- ``execution``: the run under load, segment by segment, and its figures;
- ``levels``: sweeps and the rate search, and when a sweep stops (saturation);
- ``server``: what the server says (its gauge after the load, the mock's ground truth,
  the figures of its scraped metrics);
- ``files``: the files written beside ``results.jsonl``;
- ``result``: what a run gathered.
"""

from harness.run.execution import execute, run_load
from harness.run.files import server_rows, write_run_files
from harness.run.levels import RateSearch, Sweep, search_rates
from harness.run.result import RunResult, default_out_dir
from harness.run.server import add_server_view, recognised_gauge

__all__ = [
    "RateSearch",
    "RunResult",
    "Sweep",
    "add_server_view",
    "default_out_dir",
    "execute",
    "recognised_gauge",
    "run_load",
    "search_rates",
    "server_rows",
    "write_run_files",
]
