"""A server's ``/metrics`` with the habits of real ones, for the scraper to meet.

Paths:

* ``/vllm``: vLLM-style names with labels (``model_name``, ``engine``), counters that
  grow with every read, a TTFT histogram of vLLM's own edges, the older
  ``gpu_cache_usage_perc`` name, a ``# EOF``-less 0.0.4 exposition;
* ``/unknown``: an app's own gauge and counter, no known server's names;
* ``/garbage``: a 200 with text that is not the Prometheus format;
* ``/hang``: headers, then nothing, until the client gives up;
* ``/error``: a 503.

Run alone: ``python -m tests.apps.metrics_app`` prints ``serving metrics_app on <url>``.
"""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TTFT_EDGES", "metrics_app", "vllm_text"]

TTFT_EDGES = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)


def vllm_text(reads: int) -> str:
    """The exposition after ``reads`` reads: each read adds 10 requests whose TTFT falls
    in the (0.04, 0.06] bucket, 2 running, 400 generated tokens and half a prefix hit."""
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        'vllm:num_requests_running{engine="0",model_name="m"} 2.0',
        "# TYPE vllm:num_requests_waiting gauge",
        f'vllm:num_requests_waiting{{engine="0",model_name="m"}} {reads % 3}.0',
        "# TYPE vllm:gpu_cache_usage_perc gauge",
        f'vllm:gpu_cache_usage_perc{{engine="0",model_name="m"}} {min(reads / 100, 1.0)}',
        "# TYPE vllm:generation_tokens counter",
        f'vllm:generation_tokens_total{{engine="0",model_name="m"}} {400.0 * reads}',
        "# TYPE vllm:prefix_cache_hits counter",
        f'vllm:prefix_cache_hits_total{{engine="0",model_name="m"}} {50.0 * reads}',
        "# TYPE vllm:prefix_cache_queries counter",
        f'vllm:prefix_cache_queries_total{{engine="0",model_name="m"}} {100.0 * reads}',
        "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ]
    for le in TTFT_EDGES:
        n = 10 * reads if le >= 0.06 else 0
        lines.append(
            f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="{le}",model_name="m"}} {n}'
        )
    lines += [
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="m"}} '
        f"{10 * reads}",
        f'vllm:time_to_first_token_seconds_count{{engine="0",model_name="m"}} {10 * reads}',
        f'vllm:time_to_first_token_seconds_sum{{engine="0",model_name="m"}} {0.05 * 10 * reads}',
    ]
    return "\n".join(lines) + "\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    reads = itertools.count(1)
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/vllm":
            self._send(200, vllm_text(next(self.reads)))
        elif self.path == "/unknown":
            self._send(200, "# TYPE app_streams gauge\napp_streams{route=\"chat\"} 3\n"
                            "app_streams{route=\"embed\"} 1\napp_requests_total 12\n")  # fmt: skip
        elif self.path == "/garbage":
            self._send(200, "<html><body>not metrics {{{</body></html>\n")
        elif self.path == "/hang":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            self.release.wait(30)  # bounded: the server's own end lets it go
        else:
            self._send(503, "unavailable\n")


@contextmanager
def metrics_app() -> Iterator[str]:
    """Serve the app on a free loopback port; yields its base URL."""
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"reads": itertools.count(1), "release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    with metrics_app() as url:
        print(f"serving metrics_app on {url}", flush=True)
        threading.Event().wait()
