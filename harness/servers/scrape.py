"""Scraping servers' Prometheus ``/metrics`` through a run (``--server-metrics``).

``Scraper`` reads each URL every ``interval_s`` (1 s by default) in a daemon thread of
its own, so neither the load's event loop nor another replica ever waits on a slow
server. Each scrape is bounded by ``timeout_s`` as a whole (a server that trickles its
answer is cut off too) and by ``MAX_METRICS_BYTES``. A scrape that fails (refused, timed
out, an error status, text that is not the Prometheus format) is written as one line
with its error and costs nothing else. Every scrape, good or bad, is appended at once to
``server_metrics.raw.jsonl`` as read, so a run that crashes keeps what was scraped.

After the load the text is read with ``prometheus_client``'s parser into
``server_metrics.jsonl`` (``harness.results.ServerScrape``); every sample is kept,
whatever the server, so figures the vocabulary does not know can still be named
afterwards. The parser is pure Python, and parsing while the load runs would take the
interpreter from the load's event loop for tens of milliseconds a second (and it is
loaded only then).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import msgspec

from harness.errors import ConfigError
from harness.results import ServerScrape
from harness.servers.gauge import MAX_METRICS_BYTES

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MAX_RAW_BYTES",
    "MAX_SCRAPES",
    "RawScrape",
    "Scraper",
    "fetch_once",
    "fetch_text",
    "parse_samples",
    "scrape_once",
]

DEFAULT_INTERVAL_S = 1.0
#: The most scrapes of one URL a run keeps at its interval; past it the interval doubles
#: (a day at the default interval), so the file stays bounded however long the run.
MAX_SCRAPES = 86_400
#: Each time the raw scrapes pass another this many bytes, the interval doubles.
MAX_RAW_BYTES = 256 * 1024 * 1024
#: The most samples kept of one scrape.
MAX_SAMPLES = 200_000

Sample = tuple[str, dict[str, str], float]


def parse_samples(text: str) -> list[Sample]:
    """Every sample of an exposition, as ``(name, labels, value)``.

    Raises:
        ValueError: the text is not the Prometheus text format.
    """
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[Sample] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.append((sample.name, dict(sample.labels), float(sample.value)))
            if len(samples) > MAX_SAMPLES:
                raise ValueError(f"more than {MAX_SAMPLES} samples")
    return samples


def fetch_text(url: str, timeout_s: float, *, clock: Callable[[], float] = time.monotonic) -> str:
    """The text at ``url``, read within ``timeout_s`` in all.

    Raises:
        OSError: refused, an error status, or the time ran out (``TimeoutError``).
        ValueError: ``url`` is not http(s), or the answer is larger than allowed.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("not an http:// or https:// URL")
    deadline = clock() + timeout_s
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # the user's URL
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - clock()
            if left <= 0:
                raise TimeoutError(f"no whole answer within {timeout_s:g} s")
            sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_METRICS_BYTES:
                raise ValueError(f"the answer is over {MAX_METRICS_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return "timed out" if isinstance(reason, TimeoutError) else f"{reason}"
    if isinstance(exc, TimeoutError):  # the socket's own says only "timed out"
        return f"timed out: {exc}" if str(exc) not in ("", "timed out") else "timed out"
    return str(exc) or type(exc).__name__


class RawScrape(msgspec.Struct, frozen=True, kw_only=True):
    """A scrape as read, before parsing: a line of ``server_metrics.raw.jsonl``."""

    t_ns: int
    url: str
    elapsed_ns: int = 0
    text: str | None = None
    error: str | None = None

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    def parsed(self) -> ServerScrape:
        """The scrape with its samples, or the reason there are none."""
        if self.text is None:
            return self._as(error=self.error or "no answer")
        try:
            samples = parse_samples(self.text)
        except ValueError as exc:  # the parser's one exception for text it cannot read
            return self._as(error=f"not Prometheus text: {str(exc)[:200]}")
        return self._as(samples=samples)

    def _as(self, *, samples: list[Sample] | None = None, error: str | None = None) -> ServerScrape:
        return ServerScrape(
            t_ns=self.t_ns,
            url=self.url,
            elapsed_ns=self.elapsed_ns,
            samples=samples or [],
            error=error,
        )


def fetch_once(
    url: str,
    timeout_s: float,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    fetch: Callable[[str, float], str] = fetch_text,
) -> RawScrape:
    """One read of ``url``: its text, or why there is none."""
    begun = clock()
    try:
        text = fetch(url, timeout_s)
    except (OSError, ValueError) as exc:
        ended = clock()
        return RawScrape(
            t_ns=(begun + ended) // 2, url=url, elapsed_ns=ended - begun, error=_why(exc)
        )
    ended = clock()
    return RawScrape(t_ns=(begun + ended) // 2, url=url, elapsed_ns=ended - begun, text=text)


def scrape_once(
    url: str,
    timeout_s: float,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    fetch: Callable[[str, float], str] = fetch_text,
) -> ServerScrape:
    """One scrape of ``url``, parsed: its samples, or the reason there are none."""
    return fetch_once(url, timeout_s, clock=clock, fetch=fetch).parsed()


_RAW = msgspec.json.Decoder(RawScrape)


class Scraper:
    """Scrapes every URL at a fixed interval, from ``start()`` to ``stop()``, and writes
    each scrape to ``path``.

    ``start`` scrapes each URL once before returning (the figures' baseline), and
    ``stop`` once more after the load (their end), whatever the ticks. While the load
    runs, each answer is only read and appended as text to ``<path stem>.raw.jsonl``:
    the parser is pure Python (tens of microseconds a line), and parsing in the client's
    process would take the interpreter from the load's event loop. ``stop`` parses them
    into ``path`` and removes the raw file (which a crashed run leaves behind, whole
    to its last line).

    Args:
        urls: each server's ``/metrics``.
        path: the ``server_metrics.jsonl`` to append to.
        interval_s: time between a URL's scrapes (ticks at absolute times; a scrape that
            overruns skips the ticks it missed).
        timeout_s: the bound of one scrape (default: the interval, at most 2 s).
        clock: monotonic nanoseconds, the clock of the run's records.
        fetch: ``(url, timeout_s) -> text``; the HTTP read by default.
    """

    def __init__(
        self,
        urls: Sequence[str],
        path: Path,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        fetch: Callable[[str, float], str] = fetch_text,
    ) -> None:
        if not urls:
            raise ConfigError("server-metrics", "no URL to scrape")
        if not interval_s > 0 or (timeout_s is not None and not timeout_s > 0):
            raise ConfigError("server-metrics", "the scrape interval and timeout must be > 0")
        for url in urls:
            if not url.lower().startswith(("http://", "https://")):
                raise ConfigError("server-metrics", f"{url!r} is not an http:// or https:// URL")
        self.urls = tuple(dict.fromkeys(urls))
        self.path = path
        self.raw_path = path.with_name(f"{path.stem}.raw.jsonl")
        self.interval_ns = int(interval_s * 1e9)
        self.timeout_s = timeout_s if timeout_s is not None else min(interval_s, 2.0)
        self.scrapes = dict.fromkeys(self.urls, 0)
        self.errors = dict.fromkeys(self.urls, 0)
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self.bytes_written = 0
        self._budget = MAX_RAW_BYTES
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._file: IO[bytes] | None = None

    def start(self) -> None:
        """Scrape each URL once (in parallel), then keep scraping in the background."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.raw_path.open("ab")
        self._each(self._scrape)
        for url in self.urls:
            thread = threading.Thread(target=self._loop, args=(url,), daemon=True,
                                      name=f"scrape {url}")  # fmt: skip
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the background scrapes, scrape each URL a last time, close the file."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 1.0)
        if self._file is None:
            return
        self._each(self._scrape)
        with self._lock:
            self._file.close()
            self._file = None
        self._parse()

    def _parse(self) -> None:
        """Parse the raw scrapes into ``path``, counting the text that is no exposition
        as a failed scrape, and remove the raw file."""
        with self.raw_path.open("rb") as raw, self.path.open("ab") as out:
            for line in raw:
                scrape = _RAW.decode(line).parsed()
                if scrape.error is not None and scrape.error.startswith("not Prometheus"):
                    self.errors[scrape.url] += 1
                out.write(scrape.to_json() + b"\n")
        self.raw_path.unlink()

    def _each(self, action: Callable[[str], None]) -> None:
        threads = [threading.Thread(target=action, args=(url,), daemon=True) for url in self.urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=self.timeout_s + 1.0)

    def _scrape(self, url: str) -> None:
        scrape = fetch_once(url, self.timeout_s, clock=self._clock, fetch=self._fetch)
        line = scrape.to_json() + b"\n"
        with self._lock:
            self.scrapes[url] += 1
            if scrape.error is not None:
                self.errors[url] += 1
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
                self.bytes_written += len(line)
            if self.bytes_written > self._budget or self.scrapes[url] % MAX_SCRAPES == 0:
                self._budget += MAX_RAW_BYTES
                self.interval_ns *= 2  # the whole run stays covered, more sparsely

    def _loop(self, url: str) -> None:
        next_ns = self._clock() + self.interval_ns
        while not self._stopping.wait(max(next_ns - self._clock(), 0) / 1e9):
            self._scrape(url)
            interval = self.interval_ns
            now = self._clock()
            next_ns += interval
            if next_ns < now:  # skip the ticks this scrape overran
                next_ns += ((now - next_ns) // interval + 1) * interval
