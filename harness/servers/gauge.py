"""A server's own gauge of running requests, read from its Prometheus ``/metrics``.

Where a server's ground truth per request cannot be had, its gauge still shows whether
it stopped the streams the client abandoned. ``GaugeSampler`` reads it every
``interval_s`` through the run, in a thread of its own so the load's event loop never
waits on a scrape; ``harness.load.stopping`` then judges, stream by stream, whether the gauge
fell before the stream would have ended by itself. A gauge counts streams but does not
name them, nor can it say how many tokens went out after a close; the summary says so.

A gauge is named by a selector: a metric name, optionally with labels, as in
``app_streams{route="chat"}``. It matches the samples of that name whose labels include
the given ones; the values of every matching sample are summed. The exposition text is
read with ``prometheus_client``'s parser, loaded when a gauge is first read (a run
without one does not wait for it before its first request).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.load.stopping import Sample

__all__ = [
    "GaugeSampler",
    "GaugeSelector",
    "check_gauge",
    "parse_gauge",
    "read_gauge",
    "wait_for_baseline",
]

#: The most samples a sampler keeps; past it, every other one is dropped and the
#: interval doubles, so the whole run stays covered (over 2 h at the default interval).
MAX_SAMPLES = 80_000
#: The most bytes read from ``/metrics`` (a vLLM exposition is tens of KiB).
MAX_METRICS_BYTES = 16 * 1024 * 1024
#: How many label sets an error message lists when none matched.
_SHOWN_LABEL_SETS = 5


@dataclass(frozen=True, slots=True)
class GaugeSelector:
    """A metric name and the labels its samples must carry (``name{label="value"}``)."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> GaugeSelector:
        """Read ``name`` or ``name{label="value",other="x"}`` (Prometheus' own quoting).

        Raises:
            ConfigError: (``metrics-gauge``) the text is no such selector.
        """
        from prometheus_client.parser import text_string_to_metric_families

        shape = 'expected name or name{label="value",...}'
        if not text.strip() or any(c in text for c in "\r\n#"):
            raise ConfigError("metrics-gauge", f"{text!r}: {shape}")
        # a selector is a sample line without its value: let the exposition parser read it
        try:
            samples = [s for f in text_string_to_metric_families(f"{text} 0\n") for s in f.samples]
        except ValueError as exc:
            raise ConfigError("metrics-gauge", f"{text!r}: {shape}") from exc
        if len(samples) != 1 or samples[0].timestamp is not None:
            raise ConfigError("metrics-gauge", f"{text!r}: {shape}")
        sample = samples[0]
        return cls(name=sample.name, labels=tuple(sorted(sample.labels.items())))

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        """Whether a sample of metric ``name`` with ``labels`` is one of the selected."""
        return name == self.name and all(labels.get(k) == v for k, v in self.labels)

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        inner = ",".join(f'{k}="{_quoted(v)}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _selector(selector: GaugeSelector | str) -> GaugeSelector:
    return selector if isinstance(selector, GaugeSelector) else GaugeSelector.parse(selector)


def _lines_of(text: str, name: str) -> str:
    """The lines of ``text`` about metric ``name``: its samples and its HELP and TYPE.

    The parser is pure Python and a server's exposition can run to thousands of lines;
    read every 100 ms in the client's process, only the gauge's own lines are parsed.
    """
    kept = []
    for line in text.splitlines():
        if line.startswith(name):
            if line[len(name) : len(name) + 1] in ("{", " ", "\t"):
                kept.append(line)
        elif line.startswith("#"):
            words = line.split(None, 3)
            if len(words) > 2 and words[1] in ("HELP", "TYPE") and words[2] == name:
                kept.append(line)
    return "\n".join(kept) + "\n"


def _select(text: str, selector: GaugeSelector) -> tuple[float | None, str]:
    """The sum of the selected samples, or None and why there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    total = None
    seen: list[dict[str, str]] = []
    try:
        for family in text_string_to_metric_families(_lines_of(text, selector.name)):
            for sample in family.samples:
                if sample.name != selector.name:
                    continue
                seen.append(sample.labels)
                if selector.matches(sample.name, sample.labels) and sample.value == sample.value:
                    total = sample.value if total is None else total + sample.value  # not NaN
    except ValueError as exc:
        return None, f"the metrics are not Prometheus text ({exc})"
    if total is not None:
        return float(total), ""
    if not seen:
        return None, f"no metric {selector.name}"
    shown = ", ".join(
        "{" + ",".join(f'{k}="{_quoted(v)}"' for k, v in sorted(labels.items())) + "}"
        for labels in seen[:_SHOWN_LABEL_SETS]
    )
    more = f" and {len(seen) - _SHOWN_LABEL_SETS} more" if len(seen) > _SHOWN_LABEL_SETS else ""
    return None, f"no sample of {selector.name} matches {selector} (it has {shown}{more})"


def parse_gauge(text: str, name: GaugeSelector | str) -> float | None:
    """The sum of the samples ``name`` selects in exposition ``text``, or None if none.

    Raises:
        ConfigError: ``name`` is a string that is no selector.
    """
    return _select(text, _selector(name))[0]


def _fetch(url: str, timeout_s: float) -> str:
    """The exposition text at ``url``.

    Raises:
        OSError: the server cannot be reached or answered with an error status.
        ValueError: ``url`` is not an http(s) URL.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("not an http:// or https:// URL")
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # the user's URL
        return response.read(MAX_METRICS_BYTES).decode("utf-8", "replace")


def read_gauge(url: str, name: GaugeSelector | str, *, timeout_s: float = 2.0) -> float | None:
    """Read the gauge; None when the endpoint or the selected samples cannot be had."""
    try:
        return _select(_fetch(url, timeout_s), _selector(name))[0]
    except (OSError, ValueError):
        return None


def check_gauge(url: str, selector: GaugeSelector | str, *, timeout_s: float = 5.0) -> float:
    """Read the gauge once before a run, and say plainly why it cannot be read.

    Raises:
        ConfigError: ``metrics-url`` when nothing can be fetched there, ``metrics-gauge``
            when the selector is malformed or selects no sample.
    """
    selector = _selector(selector)
    try:
        text = _fetch(url, timeout_s)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError("metrics-url", f"cannot read {url}: {reason}") from exc
    value, why = _select(text, selector)
    if value is None:
        raise ConfigError("metrics-gauge", f"{why} at {url}")
    return value


def wait_for_baseline(
    url: str, name: str, baseline: float, *, timeout_s: float = 10.0, interval_s: float = 0.1
) -> dict[str, float | bool | None]:
    """Poll until the gauge is back at ``baseline`` or below (bounded by ``timeout_s``).

    Returns:
        ``baseline``, ``after_run`` (the first reading), ``returned`` and
        ``seconds_to_baseline`` (None when it did not return in time).
    """
    start = time.monotonic()
    first = value = read_gauge(url, name)
    while value is not None and value > baseline and time.monotonic() - start < timeout_s:
        time.sleep(interval_s)
        value = read_gauge(url, name)
    returned = value is not None and value <= baseline
    return {
        "baseline": baseline,
        "after_run": first,
        "returned": returned,
        "seconds_to_baseline": time.monotonic() - start if returned else None,
    }


class GaugeSampler:
    """Reads a gauge every ``interval_s`` in a daemon thread, from ``start()`` to ``stop()``.

    Ticks are absolute times (``start + k * interval``); a scrape that overruns its tick
    skips the ticks it missed. Each scrape is bounded by ``timeout_s``; a failed one is
    counted in ``failures`` and leaves no sample.

    Args:
        url: the server's ``/metrics``.
        selector: the gauge.
        interval_s: time between scrapes.
        timeout_s: the bound of one scrape.
        clock: monotonic nanoseconds, the clock of the run's records.
        read: ``(url, selector, timeout_s) -> value or None``; the HTTP read by default.
    """

    def __init__(
        self,
        url: str,
        selector: GaugeSelector | str,
        *,
        interval_s: float = 0.1,
        timeout_s: float = 1.0,
        clock: Callable[[], int] = time.perf_counter_ns,
        read: Callable[[str, GaugeSelector, float], float | None] | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ConfigError("metrics-gauge", "the sampling interval and timeout must be > 0")
        self.url = url
        self.selector = _selector(selector)
        self.interval_ns = int(interval_s * 1e9)
        self.timeout_s = timeout_s
        self.failures = 0
        self._clock = clock
        self._read = read or (lambda u, s, t: read_gauge(u, s, timeout_s=t))
        self._samples: list[Sample] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def samples(self) -> list[Sample]:
        """The samples so far, oldest first (a copy)."""
        with self._changed:
            return list(self._samples)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="gauge-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[Sample]:
        """Stop sampling (waiting at most one scrape's timeout) and return the samples."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1.0)
        return self.samples

    def now_ns(self) -> int:
        """The sampler's clock."""
        return self._clock()

    def wait_settled(self, *, baseline: float, since_ns: int, until_ns: int) -> None:
        """Block until a sample taken at ``since_ns`` or later is at ``baseline`` or below,
        or the clock passes ``until_ns``, or the sampler stops. Call it from a worker
        thread."""
        with self._changed:
            while not self._stopping.is_set():
                last = self._samples[-1] if self._samples else None
                if last is not None and last.t_ns >= since_ns and last.value <= baseline:
                    return
                left_ns = until_ns - self._clock()
                if left_ns <= 0:
                    return
                self._changed.wait(timeout=min(left_ns / 1e9, 1.0))

    def _loop(self) -> None:
        next_ns = self._clock()
        while not self._stopping.is_set():
            begun = self._clock()
            value = self._read(self.url, self.selector, self.timeout_s)
            ended = self._clock()
            with self._changed:
                if value is None:
                    self.failures += 1
                else:
                    self._samples.append(Sample((begun + ended) // 2, value, ended - begun))
                    if len(self._samples) >= MAX_SAMPLES:
                        del self._samples[1::2]
                        self.interval_ns *= 2
                self._changed.notify_all()
            next_ns += self.interval_ns
            if next_ns < ended:  # skip the ticks this scrape overran
                next_ns += (ended - next_ns) // self.interval_ns * self.interval_ns
                next_ns += self.interval_ns
            self._stopping.wait(max(next_ns - self._clock(), 0) / 1e9)
