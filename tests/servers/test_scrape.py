"""Scraping servers' /metrics: every scrape a line of server_metrics.jsonl, every bad one
(refused, hanging, garbage, an error status) one recorded error and nothing more."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.results import read_scrapes
from harness.run import recognised_gauge
from harness.servers.scrape import Scraper, scrape_once
from tests.apps.metrics_app import metrics_app


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    with metrics_app() as url:
        yield url


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"


def test_a_good_scrape_keeps_every_sample_with_its_labels(app: str) -> None:
    got = scrape_once(f"{app}/vllm", 5.0)
    assert got.error is None
    assert got.elapsed_ns > 0
    names = {name for name, _, _ in got.samples}
    assert "vllm:time_to_first_token_seconds_bucket" in names
    running = [s for s in got.samples if s[0] == "vllm:num_requests_running"]
    assert running == [("vllm:num_requests_running", {"engine": "0", "model_name": "m"}, 2.0)]


@pytest.mark.parametrize(
    ("path", "says"),
    [("/garbage", "not Prometheus text"), ("/hang", "timed out"), ("/error", "HTTP 503")],
)
def test_a_bad_scrape_is_one_error_saying_why(app: str, path: str, says: str) -> None:
    got = scrape_once(f"{app}{path}", 0.5)
    assert got.samples == []
    assert got.error is not None
    assert says in got.error


def test_a_refused_connection_is_an_error_too() -> None:
    got = scrape_once(closed_port(), 2.0)
    assert got.error is not None
    assert "refused" in got.error.lower()


def test_the_scraper_writes_each_scrape_and_counts_the_bad_ones(app: str, tmp_path: Path) -> None:
    urls = [f"{app}/vllm", f"{app}/hang", f"{app}/garbage", closed_port(), f"{app}/unknown"]
    scraper = Scraper(urls, tmp_path / "server_metrics.jsonl", interval_s=0.05, timeout_s=0.3)
    scraper.start()
    enough = threading.Event()
    # wait on the scraper's own count, not on a clock: 3 good scrapes of the vLLM path
    for _ in range(600):
        if scraper.scrapes[urls[0]] >= 3:
            enough.set()
            break
        enough.wait(0.05)
    scraper.stop()
    assert enough.is_set()
    assert not scraper.raw_path.exists()  # parsed after the load, then removed
    assert scraper.bytes_written > 0
    scrapes = list(read_scrapes(tmp_path / "server_metrics.jsonl"))
    by_url = {url: [s for s in scrapes if s.url == url] for url in urls}
    assert all(s.error is None for s in by_url[urls[0]])
    assert len(by_url[urls[0]]) >= 4
    assert all(s.error is None and s.samples for s in by_url[urls[4]])
    for bad in urls[1:4]:  # each scrape of a bad server: one line, one error
        assert by_url[bad]
        assert all(s.error and not s.samples for s in by_url[bad])
        assert scraper.errors[bad] == len(by_url[bad])
    assert scraper.errors[urls[0]] == 0
    times = [s.t_ns for s in by_url[urls[0]]]
    assert times == sorted(times)


def test_a_url_that_is_not_http_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server-metrics"):
        Scraper(["file:///etc/passwd"], tmp_path / "x.jsonl")
    with pytest.raises(ConfigError, match="server-metrics"):
        Scraper(["http://127.0.0.1:1/metrics"], tmp_path / "x.jsonl", interval_s=0)


def test_a_recognised_servers_gauge_of_running_requests_is_found(app: str) -> None:
    assert recognised_gauge([f"{app}/vllm"]) == (f"{app}/vllm", "vllm:num_requests_running")
    assert recognised_gauge([f"{app}/unknown"]) is None
    assert recognised_gauge([f"{app}/garbage"]) is None
    assert recognised_gauge([closed_port()]) is None
    assert recognised_gauge([f"{app}/vllm", f"{app}/vllm?b"]) is None  # one server only


def test_while_the_load_runs_answers_are_kept_as_read_and_parsed_after(
    app: str, tmp_path: Path
) -> None:
    fetched = threading.Event()

    def fetch(url: str, timeout_s: float) -> str:
        fetched.set()
        return "not { metrics\n" if url.endswith("bad") else "app_streams 3\n"

    path = tmp_path / "server_metrics.jsonl"
    scraper = Scraper(["http://127.0.0.1:1/good", "http://127.0.0.1:1/bad"], path,
                      interval_s=60, fetch=fetch)  # fmt: skip
    scraper.start()
    assert fetched.is_set()
    assert scraper.raw_path.exists()
    assert not path.exists()  # nothing parsed yet
    assert scraper.errors["http://127.0.0.1:1/bad"] == 0
    scraper.stop()
    scrapes = list(read_scrapes(path))
    good = [s for s in scrapes if s.url.endswith("good")]
    assert [s.samples for s in good] == [[("app_streams", {}, 3.0)]] * 2
    assert scraper.errors["http://127.0.0.1:1/bad"] == 2
    assert not scraper.raw_path.exists()
